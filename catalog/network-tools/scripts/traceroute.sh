#!/bin/sh
# network-tools/traceroute: the route from the target to a host, one UDP probe per hop, numeric
# (no reverse lookups). OC_PARAM_HOST is checked against the host-name/address character set (a
# letter, digit or ":" first, so it can never read as an option) and passed as one quoted
# argument; max_hops and wait_seconds must be integers.
# Exit codes: 0 destination reached, 1 not reached within max_hops (or traceroute missing),
# 2 invalid parameter.
set -uf

host=${OC_PARAM_HOST:-}
max_hops=${OC_PARAM_MAX_HOPS:-30}
wait_s=${OC_PARAM_WAIT_SECONDS:-2}

invalid() { echo "traceroute: $1" >&2; exit 2; }
case $host in
  [A-Za-z0-9:]*) ;;
  *) invalid "host must be a host name or an IP address (got '$host')" ;;
esac
case $host in
  *[!A-Za-z0-9.:%_-]*) invalid "host must be a host name or an IP address (got '$host')" ;;
esac
case $max_hops in '' | *[!0-9]*) invalid "max_hops must be an integer from 1 to 64 (got '$max_hops')" ;; esac
case $wait_s in '' | *[!0-9]* | 0) invalid "wait_seconds must be a positive integer (got '$wait_s')" ;; esac
[ "$max_hops" -ge 1 ] && [ "$max_hops" -le 64 ] || invalid "max_hops must be an integer from 1 to 64 (got '$max_hops')"
# Debian installs traceroute in /usr/sbin as well; non-root PATHs often lack it.
PATH=$PATH:/usr/sbin:/sbin
command -v traceroute >/dev/null 2>&1 || { echo "traceroute: traceroute is not installed" >&2; exit 1; }

text=$(traceroute -n -q 1 -m "$max_hops" -w "$wait_s" "$host" 2>&1)
code=$?
printf '%s\n' "$text"
# Header: "traceroute to localhost (127.0.0.1), 30 hops max, 60 byte packets".
destination=$(printf '%s\n' "$text" | sed -n 's/^traceroute to [^ ]* (\([^)]*\)).*/\1/p')
if [ "$code" -ne 0 ] || [ -z "$destination" ]; then
  echo "traceroute: traceroute failed (exit code $code)" >&2
  exit 1
fi
# Hop lines: " 1  192.0.2.1  0.412 ms" or " 2  *" when the probe got no answer.
hops=$(printf '%s\n' "$text" | awk '$1 ~ /^[0-9]+$/ { print $1, $2 }')
hop_count=0
last=
while read -r number address; do
  [ -n "$number" ] || continue
  echo "OC_OUTPUT hop_$number=$address"
  hop_count=$number
  last=$address
done <<HOPS
$hops
HOPS
reached=false
[ "$last" = "$destination" ] && reached=true
echo "OC_OUTPUT destination=$destination"
echo "OC_OUTPUT hop_count=$hop_count"
echo "OC_OUTPUT last_hop=$last"
echo "OC_OUTPUT reached=$reached"
if [ "$reached" != true ]; then
  echo "traceroute: $host ($destination) not reached within $max_hops hops" >&2
  exit 1
fi
