#!/bin/sh
# linux-core/tail_log: the last lines of a log file, optionally only those matching a pattern.
# Parameters arrive as environment variables: OC_PARAM_PATH (absolute) and OC_PARAM_PATTERN are
# passed as single quoted arguments (`grep -E -e "$pattern" -- "$path"`), never evaluated;
# OC_PARAM_LINES must be an integer from 1 to 100000.
# Log text is not trusted: a line that starts with "OC_OUTPUT" is printed as "[OC_OUTPUT]..." so a
# log cannot set the step's outputs.
# Exit codes: 0 ok (also when no line matched), 1 unreadable file or bad pattern, 2 invalid parameter.
set -u

path=${OC_PARAM_PATH:-}
lines=${OC_PARAM_LINES:-100}
pattern=${OC_PARAM_PATTERN:-}

case $path in
  /*) ;;
  *) echo "tail_log: path must be absolute (got '$path')" >&2; exit 2 ;;
esac
case $lines in
  '' | *[!0-9]*) echo "tail_log: lines must be an integer from 1 to 100000 (got '$lines')" >&2; exit 2 ;;
esac
if [ "$lines" -lt 1 ] || [ "$lines" -gt 100000 ]; then
  echo "tail_log: lines must be an integer from 1 to 100000 (got '$lines')" >&2
  exit 2
fi
if [ ! -e "$path" ]; then
  echo "tail_log: $path does not exist" >&2
  exit 1
fi
if [ -d "$path" ]; then
  echo "tail_log: $path is a directory" >&2
  exit 1
fi
if [ ! -r "$path" ]; then
  echo "tail_log: $path is not readable by $(id -un)" >&2
  exit 1
fi

tmp=$(mktemp) || exit 1
trap 'rm -f "$tmp" "$tmp.out"' EXIT
if [ -n "$pattern" ]; then
  grep -E -e "$pattern" -- "$path" > "$tmp"
  # grep: 1 means no line matched (fine), 2 an error such as an invalid expression.
  if [ $? -gt 1 ]; then
    echo "tail_log: grep failed (is the pattern a valid extended regular expression?)" >&2
    exit 1
  fi
  tail -n "$lines" "$tmp" > "$tmp.out" && mv "$tmp.out" "$tmp"
else
  tail -n "$lines" -- "$path" > "$tmp" || exit 1
fi

sed 's/^OC_OUTPUT/[OC_OUTPUT]/' "$tmp"
echo "OC_OUTPUT path=$path"
echo "OC_OUTPUT lines_returned=$(wc -l < "$tmp" | tr -d ' ')"
echo "OC_OUTPUT file_size_bytes=$(wc -c < "$path" | tr -d ' ')"
