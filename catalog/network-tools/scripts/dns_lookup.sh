#!/bin/sh
# network-tools/dns_lookup: resolves a name from the target, through DNS (dig, optionally against
# a given server) or through the system resolver (getent: /etc/hosts, then DNS, as programs see it).
# OC_PARAM_NAME and OC_PARAM_SERVER are checked against the host-name/address character set (a
# letter, digit, "_" or ":" first, so neither can read as an option) and passed as single quoted
# arguments; the record type comes from a fixed list; port and timeout must be integers.
# Exit codes: 0 answered (or no answer with require_answer=false), 1 no answer / server
# unreachable / tool missing, 2 invalid parameter.
set -uf

name=${OC_PARAM_NAME:-}
type=${OC_PARAM_RECORD_TYPE:-A}
resolver=${OC_PARAM_RESOLVER:-dns}
server=${OC_PARAM_SERVER:-}
port=${OC_PARAM_PORT:-53}
timeout=${OC_PARAM_TIMEOUT_SECONDS:-5}
require_answer=${OC_PARAM_REQUIRE_ANSWER:-true}

invalid() { echo "dns_lookup: $1" >&2; exit 2; }
is_host() {
  case $1 in [A-Za-z0-9_:]*) ;; *) return 1 ;; esac
  case $1 in *[!A-Za-z0-9._:-]*) return 1 ;; esac
}
is_host "$name" || invalid "name must be a host name or an IP address (got '$name')"
[ -z "$server" ] || is_host "$server" || invalid "server must be a host name or an IP address (got '$server')"
case $type in
  A | AAAA | CNAME | MX | NS | PTR | SOA | SRV | TXT | CAA) ;;
  *) invalid "record_type must be one of A AAAA CNAME MX NS PTR SOA SRV TXT CAA (got '$type')" ;;
esac
for pair in "port:$port" "timeout_seconds:$timeout"; do
  case ${pair#*:} in
    '' | *[!0-9]* | 0) invalid "${pair%%:*} must be a positive integer (got '${pair#*:}')" ;;
  esac
done

answers=
case $resolver in
  dns)
    command -v dig >/dev/null 2>&1 || { echo "dns_lookup: dig is not installed (dnsutils / bind-utils)" >&2; exit 1; }
    # PTR lookups of an address go through -x (dig builds the in-addr.arpa / ip6.arpa name).
    if [ "$type" = PTR ] && printf '%s' "$name" | grep -q '^[0-9.]*$\|:'; then set -- -x "$name"; else set -- -t "$type" "$name"; fi
    [ -n "$server" ] && set -- "@$server" "$@"
    text=$(dig +noall +comments +answer +stats +time="$timeout" +tries=1 -p "$port" "$@" 2>&1)
    code=$?
    printf '%s\n' "$text"
    if [ "$code" -ne 0 ]; then
      echo "dns_lookup: dig failed (exit code $code): no answer from ${server:-the configured name servers}" >&2
      exit 1
    fi
    status=$(printf '%s\n' "$text" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p' | head -n 1)
    query_ms=$(printf '%s\n' "$text" | sed -n 's/^;; Query time: \([0-9]*\) msec.*/\1/p')
    # ";; SERVER: 127.0.0.1#53(127.0.0.1) (UDP)" -> 127.0.0.1#53
    used_server=$(printf '%s\n' "$text" | sed -n 's/^;; SERVER: \([^ (]*\).*/\1/p')
    # Answer lines: name TTL class type data… (comments start with ";").
    answers=$(printf '%s\n' "$text" | awk -v t="$type" '!/^;/ && NF >= 5 && $4 == t { $1 = $2 = $3 = $4 = ""; sub(/^ +/, ""); print }')
    echo "OC_OUTPUT status=$status"
    echo "OC_OUTPUT query_time_ms=$query_ms"
    echo "OC_OUTPUT server=$used_server"
    ;;
  system)
    case $type in
      A) database=ahostsv4 ;;
      AAAA) database=ahostsv6 ;;
      *) invalid "resolver=system answers A and AAAA only (got '$type')" ;;
    esac
    answers=$(getent "$database" "$name" | awk '!seen[$1]++ { print $1 }')
    printf '%s\n' "${answers:-(no address)}"
    ;;
  *) invalid "resolver must be dns or system (got '$resolver')" ;;
esac

count=0
[ -n "$answers" ] && count=$(printf '%s\n' "$answers" | wc -l | tr -d ' ')
echo "OC_OUTPUT name=$name"
echo "OC_OUTPUT record_type=$type"
echo "OC_OUTPUT answer_count=$count"
echo "OC_OUTPUT answers=$(printf '%s\n' "$answers" | paste -s -d ',' -)"
echo "OC_OUTPUT first_answer=$(printf '%s\n' "$answers" | head -n 1)"
if [ "$count" -eq 0 ] && [ "$require_answer" = true ]; then
  echo "dns_lookup: no $type record for $name" >&2
  exit 1
fi
