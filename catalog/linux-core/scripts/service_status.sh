#!/bin/sh
# linux-core/service_status: state of a service, from systemd when it is running, else from the
# SysV `service` command, else a clear error.
# OC_PARAM_SERVICE is checked against the unit-name character set (a letter or digit first, so
# it can never read as an option) and passed as one quoted argument; nothing is evaluated.
# Exit codes: 0 state read, 1 no service manager / unknown service / not active with
# require_active, 2 invalid parameter.
set -u

name=${OC_PARAM_SERVICE:-}
require_active=${OC_PARAM_REQUIRE_ACTIVE:-false}

case $name in
  [A-Za-z0-9]*) ;;
  *) echo "service_status: service must start with a letter or digit (got '$name')" >&2; exit 2 ;;
esac
case $name in
  *[!A-Za-z0-9@._:\\-]*) echo "service_status: service may contain only letters, digits and @ . _ : - \\ (got '$name')" >&2; exit 2 ;;
esac

# systemd counts only when it is the running init: systemctl is also installed on hosts and in
# containers where systemd is not running, and then answers "offline". Older systemctl versions
# may print nothing or "unknown" there: then /run/systemd/system (sd_booted) decides.
systemd_state='not installed'
if command -v systemctl >/dev/null 2>&1; then
  systemd_state=$(systemctl is-system-running 2>/dev/null)
  systemd_state=${systemd_state:-no answer}
fi
case $systemd_state in
  initializing | starting | running | degraded | maintenance | stopping) use_systemd=true ;;
  offline | 'not installed') use_systemd=false ;;
  *) if [ -d /run/systemd/system ]; then use_systemd=true; else use_systemd=false; fi ;;
esac

if [ "$use_systemd" = true ]; then
  manager=systemd
  props=$(systemctl show --no-pager --property=Id,LoadState,ActiveState,SubState,UnitFileState,MainPID -- "$name") || exit 1
  prop() { printf '%s\n' "$props" | sed -n "s/^$1=//p" | head -n 1; }
  if [ "$(prop LoadState)" = not-found ]; then
    echo "OC_OUTPUT manager=systemd"
    echo "service_status: systemd has no unit '$name'" >&2
    exit 1
  fi
  state=$(prop ActiveState)
  sub_state=$(prop SubState)
  active=false
  [ "$state" = active ] && active=true
  echo "$(prop Id): $state ($sub_state), $(prop UnitFileState)"
  echo "OC_OUTPUT unit=$(prop Id)"
  echo "OC_OUTPUT sub_state=$sub_state"
  echo "OC_OUTPUT enabled=$(prop UnitFileState)"
  echo "OC_OUTPUT main_pid=$(prop MainPID)"
elif command -v service >/dev/null 2>&1; then
  manager=service
  text=$(service "$name" status 2>&1)
  code=$?
  printf '%s\n' "$text"
  # LSB status codes: 0 running, 1-3 stopped (stale pid file, stale lock, not running), 4 unknown.
  case $code in
    0) state=running active=true ;;
    1 | 2 | 3) state=stopped active=false ;;
    *) state=unknown active=false ;;
  esac
  if printf '%s\n' "$text" | grep -q 'unrecognized service'; then
    echo "OC_OUTPUT manager=service"
    echo "service_status: the service command knows no service '$name'" >&2
    exit 1
  fi
  echo "OC_OUTPUT status_code=$code"
else
  echo "OC_OUTPUT manager=none"
  echo "service_status: no service manager: systemd is not running (systemctl: $systemd_state) and there is no 'service' command on PATH ($PATH)" >&2
  exit 1
fi

echo "OC_OUTPUT manager=$manager"
echo "OC_OUTPUT service=$name"
echo "OC_OUTPUT state=$state"
echo "OC_OUTPUT active=$active"
if [ "$require_active" = true ] && [ "$active" != true ]; then
  echo "service_status: $name is not active ($state)" >&2
  exit 1
fi
