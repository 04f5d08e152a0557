#!/bin/sh
# network-tools/http_check: fetches a URL from the target with curl and checks the status code
# and, optionally, that the body contains a string.
# OC_PARAM_URL must start with http:// or https:// and reaches curl as the argument of --url
# (curl is also limited to http/https, redirects included); OC_PARAM_CONTAINS is matched with
# `grep -F -e` as one quoted argument; nothing is evaluated.
# Exit codes: 0 the check passed, 1 it failed (status, content, connection), 2 invalid parameter.
set -uf

url=${OC_PARAM_URL:-}
expected=${OC_PARAM_EXPECTED_STATUS:-200}
timeout=${OC_PARAM_TIMEOUT_SECONDS:-10}
contains=${OC_PARAM_CONTAINS:-}
follow=${OC_PARAM_FOLLOW_REDIRECTS:-false}
insecure=${OC_PARAM_INSECURE:-false}

invalid() { echo "http_check: $1" >&2; exit 2; }
case $url in
  http://?* | https://?*) ;;
  *) invalid "url must start with http:// or https:// (got '$url')" ;;
esac
case $expected in '' | *[!0-9]*) invalid "expected_status must be an integer (got '$expected')" ;; esac
case $timeout in '' | *[!0-9]* | 0) invalid "timeout_seconds must be a positive integer (got '$timeout')" ;; esac
command -v curl >/dev/null 2>&1 || { echo "http_check: curl is not installed" >&2; exit 1; }

body=$(mktemp) || exit 1
trap 'rm -f "$body"' EXIT
set -- --silent --show-error --output "$body" --write-out '%{http_code} %{time_total} %{url_effective}' \
  --max-time "$timeout" --proto =http,https --proto-redir =http,https
[ "$follow" = true ] && set -- "$@" --location
[ "$insecure" = true ] && set -- "$@" --insecure
result=$(curl "$@" --url "$url")
code=$?
set -- $result
# curl reports 000 when no response arrived.
status=$(awk -v s="${1:-0}" 'BEGIN { print s + 0 }')
time_ms=$(awk -v s="${2:-0}" 'BEGIN { printf "%d", s * 1000 }')

echo "GET $url -> $status in ${time_ms} ms"
echo "OC_OUTPUT status_code=$status"
echo "OC_OUTPUT response_time_ms=$time_ms"
echo "OC_OUTPUT final_url=${3:-$url}"
echo "OC_OUTPUT body_bytes=$(wc -c < "$body" | tr -d ' ')"
if [ "$code" -ne 0 ]; then
  echo "OC_OUTPUT ok=false"
  echo "http_check: request failed (curl exit code $code)" >&2
  exit 1
fi
failure=
[ "$status" -eq "$expected" ] || failure="status $status, expected $expected"
if [ -z "$failure" ] && [ -n "$contains" ] && ! grep -q -F -e "$contains" "$body"; then
  failure="the body does not contain the expected text"
fi
if [ -n "$failure" ]; then
  echo "OC_OUTPUT ok=false"
  echo "http_check: $failure" >&2
  exit 1
fi
echo "OC_OUTPUT ok=true"
