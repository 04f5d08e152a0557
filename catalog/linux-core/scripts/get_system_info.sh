#!/bin/sh
# linux-core/get_system_info: host facts as OC_OUTPUT lines. No parameters.
# Reads /proc and /etc/os-release (parsed with sed, never sourced: it is data, not code).
set -u

# Prints one output; newlines in the value become spaces (an output is one line).
out() { printf 'OC_OUTPUT %s=%s\n' "$1" "$(printf '%s' "$2" | tr '\r\n' '  ')"; }

# A field of os-release with its surrounding quotes removed.
os_field() {
  [ -n "$os_release" ] || return 0
  sed -n "s/^$1=//p" "$os_release" | head -n 1 | sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'\$/\1/"
}

# A /proc/meminfo value in kB (empty when the kernel does not report it).
meminfo() { awk -v key="$1:" '$1 == key { print $2; exit }' /proc/meminfo; }

os_release=
for f in /etc/os-release /usr/lib/os-release; do
  if [ -r "$f" ]; then os_release=$f; break; fi
done

cpu_count=$(getconf _NPROCESSORS_ONLN 2>/dev/null || grep -c '^processor' /proc/cpuinfo)
# x86 names the model "model name"; some ARM kernels only give "Hardware" or "Processor".
cpu_model=$(sed -n -e 's/^model name[[:space:]]*:[[:space:]]*//p' -e 's/^Hardware[[:space:]]*:[[:space:]]*//p' -e 's/^Processor[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
mem_total=$(meminfo MemTotal)
mem_available=$(meminfo MemAvailable)
if [ -z "$mem_available" ]; then
  # Kernels before 3.14 have no MemAvailable: the classic estimate.
  mem_available=$(( $(meminfo MemFree) + $(meminfo Buffers) + $(meminfo Cached) ))
fi
read -r load1 load5 load15 _ < /proc/loadavg

out hostname "$(uname -n)"
out kernel "$(uname -r)"
out architecture "$(uname -m)"
out os_id "$(os_field ID)"
out os_name "$(os_field PRETTY_NAME)"
out os_version "$(os_field VERSION_ID)"
out uptime_seconds "$(cut -d . -f 1 /proc/uptime)"
out cpu_count "$cpu_count"
out cpu_model "$cpu_model"
out load_1m "$load1"
out load_5m "$load5"
out load_15m "$load15"
out memory_total_kb "$mem_total"
out memory_available_kb "$mem_available"
out memory_used_percent "$(( (mem_total - mem_available) * 100 / mem_total ))"
out swap_total_kb "$(meminfo SwapTotal)"
out swap_free_kb "$(meminfo SwapFree)"
