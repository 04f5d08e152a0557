#!/bin/sh
# network-tools/ping_test: ICMP echo from the target to a host, with loss and round-trip times.
# OC_PARAM_HOST is checked against the host-name/address character set (a letter, digit or ":"
# first, so it can never read as an option) and passed as one quoted argument after `--`;
# OC_PARAM_COUNT, OC_PARAM_TIMEOUT_SECONDS and OC_PARAM_MIN_REPLIES must be integers.
# Exit codes: 0 at least min_replies replies, 1 fewer (or ping could not run), 2 invalid parameter.
set -uf

host=${OC_PARAM_HOST:-}
count=${OC_PARAM_COUNT:-4}
timeout=${OC_PARAM_TIMEOUT_SECONDS:-10}
min_replies=${OC_PARAM_MIN_REPLIES:-1}

invalid() { echo "ping_test: $1" >&2; exit 2; }
case $host in
  [A-Za-z0-9:]*) ;;
  *) invalid "host must be a host name or an IP address (got '$host')" ;;
esac
case $host in
  *[!A-Za-z0-9.:%_-]*) invalid "host must be a host name or an IP address (got '$host')" ;;
esac
for pair in "count:$count" "timeout_seconds:$timeout" "min_replies:$min_replies"; do
  case ${pair#*:} in
    '' | *[!0-9]*) invalid "${pair%%:*} must be a non-negative integer (got '${pair#*:}')" ;;
  esac
done
[ "$count" -ge 1 ] && [ "$count" -le 1000 ] || invalid "count must be from 1 to 1000 (got $count)"
[ "$timeout" -ge 1 ] || invalid "timeout_seconds must be at least 1"
[ "$min_replies" -le "$count" ] || invalid "min_replies ($min_replies) cannot exceed count ($count)"
command -v ping >/dev/null 2>&1 || { echo "ping_test: ping is not installed (iputils-ping)" >&2; exit 1; }

# -n: numeric output (no reverse lookups); -w: deadline for the whole run.
text=$(ping -n -c "$count" -w "$timeout" -- "$host" 2>&1)
printf '%s\n' "$text"

# "4 packets transmitted, 4 received, 0% packet loss" (iputils and busybox word it alike).
summary=$(printf '%s\n' "$text" | grep 'packets transmitted')
if [ -z "$summary" ]; then
  echo "ping_test: ping did not run to completion (see its output above)" >&2
  exit 1
fi
sent=$(printf '%s\n' "$summary" | sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p')
received=$(printf '%s\n' "$summary" | sed -n 's/.* \([0-9]*\) \(packets \)*received.*/\1/p')
loss=$(printf '%s\n' "$summary" | sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p')
address=$(printf '%s\n' "$text" | sed -n 's/^PING [^ ]* (\([^)]*\)).*/\1/p; s/^PING \([^ (]*\)(\([^)]*\)).*/\2/p' | head -n 1)
# "rtt min/avg/max/mdev = 0.03/0.05/0.07/0.01 ms" (busybox: "round-trip min/avg/max = …").
rtt=$(printf '%s\n' "$text" | sed -n 's|.* = \([0-9.]*\)/\([0-9.]*\)/\([0-9.]*\).*|\1 \2 \3|p' | head -n 1)
set -- $rtt
reachable=false
[ "${received:-0}" -gt 0 ] && reachable=true

echo "OC_OUTPUT host=$host"
echo "OC_OUTPUT address=$address"
echo "OC_OUTPUT packets_sent=$sent"
echo "OC_OUTPUT packets_received=$received"
echo "OC_OUTPUT packet_loss_percent=$loss"
echo "OC_OUTPUT rtt_min_ms=${1:-}"
echo "OC_OUTPUT rtt_avg_ms=${2:-}"
echo "OC_OUTPUT rtt_max_ms=${3:-}"
echo "OC_OUTPUT reachable=$reachable"
if [ "${received:-0}" -lt "$min_replies" ]; then
  echo "ping_test: $received of $sent echo requests to $host answered, fewer than $min_replies" >&2
  exit 1
fi
