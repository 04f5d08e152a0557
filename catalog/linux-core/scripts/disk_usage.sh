#!/bin/sh
# linux-core/disk_usage: usage of the filesystem holding a path, with an optional threshold.
# Parameters arrive as environment variables (never spliced into code): OC_PARAM_PATH is passed
# to df as one quoted argument after `--`; OC_PARAM_THRESHOLD_PERCENT must be an integer 0-100.
# Exit codes: 0 ok, 1 threshold exceeded or df failed, 2 invalid parameter.
set -uf

path=${OC_PARAM_PATH:-/}
threshold=${OC_PARAM_THRESHOLD_PERCENT:-0}

case $threshold in
  '' | *[!0-9]*) echo "disk_usage: threshold_percent must be an integer from 0 to 100 (got '$threshold')" >&2; exit 2 ;;
esac
if [ "$threshold" -gt 100 ]; then
  echo "disk_usage: threshold_percent must be an integer from 0 to 100 (got '$threshold')" >&2
  exit 2
fi

# POSIX output (-P): one line per filesystem, sizes in 1024-byte blocks (-k).
if ! report=$(df -Pk -- "$path"); then
  echo "disk_usage: df failed for '$path'" >&2
  exit 1
fi
line=$(printf '%s\n' "$report" | sed -n 2p)
# Fields: filesystem, size, used, available, capacity, then the mount point (which may hold spaces).
set -- $line
filesystem=$1 size_kb=$2 used_kb=$3 available_kb=$4 use_percent=${5%\%}
mount_point=$(printf '%s\n' "$line" | sed 's/^[^ ]*  *[0-9]*  *[0-9]*  *[0-9]*  *[0-9-]*%*  *//')
case $use_percent in
  '' | *[!0-9]*) use_percent=0 ;; # pseudo filesystems report "-"
esac

printf '%s\n' "$report"
exceeded=false
if [ "$threshold" -gt 0 ] && [ "$use_percent" -ge "$threshold" ]; then
  exceeded=true
fi
echo "OC_OUTPUT filesystem=$filesystem"
echo "OC_OUTPUT mount_point=$mount_point"
echo "OC_OUTPUT size_kb=$size_kb"
echo "OC_OUTPUT used_kb=$used_kb"
echo "OC_OUTPUT available_kb=$available_kb"
echo "OC_OUTPUT use_percent=$use_percent"
echo "OC_OUTPUT threshold_exceeded=$exceeded"
if [ "$exceeded" = true ]; then
  echo "disk_usage: $mount_point is ${use_percent}% full (threshold ${threshold}%)" >&2
  exit 1
fi
