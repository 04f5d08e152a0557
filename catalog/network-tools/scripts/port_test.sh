#!/bin/bash
# network-tools/port_test: whether a TCP port on a host accepts connections from the target.
# Connects with bash's /dev/tcp under `timeout`; OC_PARAM_HOST and OC_PARAM_PORT reach the inner
# bash as positional arguments ("$1", "$2"), never as code. The host is also checked against the
# host-name/address character set; port and timeout must be integers.
# Exit codes: 0 the port is as expected (open by default), 1 it is not, 2 invalid parameter.
set -u

host=${OC_PARAM_HOST:-}
port=${OC_PARAM_PORT:-}
timeout_s=${OC_PARAM_TIMEOUT_SECONDS:-5}
expect=${OC_PARAM_EXPECT:-open}

invalid() { echo "port_test: $1" >&2; exit 2; }
[[ $host =~ ^[A-Za-z0-9:][A-Za-z0-9.:%_-]*$ ]] || invalid "host must be a host name or an IP address (got '$host')"
[[ $port =~ ^[0-9]+$ ]] && ((port >= 1 && port <= 65535)) || invalid "port must be an integer from 1 to 65535 (got '$port')"
[[ $timeout_s =~ ^[0-9]+$ ]] && ((timeout_s >= 1)) || invalid "timeout_seconds must be a positive integer (got '$timeout_s')"
[[ $expect == open || $expect == closed ]] || invalid "expect must be open or closed (got '$expect')"
command -v timeout >/dev/null || { echo "port_test: the timeout command (coreutils) is missing" >&2; exit 1; }

started=$(date +%s%N)
error=$(timeout "$timeout_s" bash -c 'exec 3<>"/dev/tcp/$1/$2"' port_test "$host" "$port" 2>&1)
code=$?
elapsed_ms=$((($(date +%s%N) - started) / 1000000))

case $code in
  0) result=open ;;
  124) result=timeout ;; # no answer at all: dropped by a firewall, or the host is down
  *) result=closed ;;
esac
open=false
[[ $result == open ]] && open=true
echo "$host:$port is $result (${elapsed_ms} ms)${error:+: ${error##*: }}"
echo "OC_OUTPUT host=$host"
echo "OC_OUTPUT port=$port"
echo "OC_OUTPUT result=$result"
echo "OC_OUTPUT open=$open"
echo "OC_OUTPUT elapsed_ms=$elapsed_ms"
if [[ ($expect == open && $open != true) || ($expect == closed && $open == true) ]]; then
  echo "port_test: expected $host:$port to be $expect, it is $result" >&2
  exit 1
fi
