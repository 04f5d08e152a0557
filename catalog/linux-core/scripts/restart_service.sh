#!/bin/sh
# linux-core/restart_service: restarts a service through systemd when it is running, else through
# the SysV `service` command, else fails with a clear message; then reports the new state.
# OC_PARAM_SERVICE is checked against the unit-name character set (a letter or digit first, so
# it can never read as an option) and passed as one quoted argument; nothing is evaluated.
# OC_PARAM_USE_SUDO=true runs the restart through `sudo -n` (never prompts: fails without
# passwordless sudo).
# Exit codes: 0 restarted and active, 1 restart failed / not active afterwards / no service
# manager / unknown service, 2 invalid parameter.
set -u

name=${OC_PARAM_SERVICE:-}
use_sudo=${OC_PARAM_USE_SUDO:-false}

case $name in
  [A-Za-z0-9]*) ;;
  *) echo "restart_service: service must start with a letter or digit (got '$name')" >&2; exit 2 ;;
esac
case $name in
  *[!A-Za-z0-9@._:\\-]*) echo "restart_service: service may contain only letters, digits and @ . _ : - \\ (got '$name')" >&2; exit 2 ;;
esac
if [ "$use_sudo" = true ] && ! command -v sudo >/dev/null 2>&1; then
  echo "restart_service: use_sudo is set but sudo is not installed on this host" >&2
  exit 1
fi

# Runs a command, through sudo when asked.
privileged() {
  if [ "$use_sudo" = true ]; then sudo -n "$@"; else "$@"; fi
}

# See service_status.sh: systemd counts only when it is the running init.
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
  echo "OC_OUTPUT manager=systemd"
  read_props() { props=$(systemctl show --no-pager --property=Id,LoadState,ActiveState,SubState,MainPID -- "$name"); }
  prop() { printf '%s\n' "$props" | sed -n "s/^$1=//p" | head -n 1; }
  read_props
  if [ "$(prop LoadState)" = not-found ]; then
    echo "restart_service: systemd has no unit '$name'" >&2
    exit 1
  fi
  if ! privileged systemctl restart --no-ask-password -- "$name"; then
    read_props
    echo "OC_OUTPUT state=$(prop ActiveState)"
    echo "OC_OUTPUT active=false"
    echo "restart_service: systemctl restart $name failed" >&2
    exit 1
  fi
  read_props
  state=$(prop ActiveState)
  echo "$(prop Id) restarted: $state ($(prop SubState)), main PID $(prop MainPID)"
  echo "OC_OUTPUT unit=$(prop Id)"
  echo "OC_OUTPUT main_pid=$(prop MainPID)"
  [ "$state" = active ] && active=true || active=false
elif command -v service >/dev/null 2>&1; then
  echo "OC_OUTPUT manager=service"
  text=$(privileged service "$name" restart 2>&1)
  code=$?
  printf '%s\n' "$text"
  if printf '%s\n' "$text" | grep -q 'unrecognized service'; then
    echo "restart_service: the service command knows no service '$name'" >&2
    exit 1
  fi
  if [ "$code" -ne 0 ]; then
    echo "OC_OUTPUT active=false"
    echo "restart_service: service $name restart failed (exit code $code)" >&2
    exit 1
  fi
  if service "$name" status >/dev/null 2>&1; then state=running active=true; else state=stopped active=false; fi
else
  echo "OC_OUTPUT manager=none"
  echo "restart_service: no service manager: systemd is not running (systemctl: $systemd_state) and there is no 'service' command on PATH ($PATH)" >&2
  exit 1
fi

echo "OC_OUTPUT service=$name"
echo "OC_OUTPUT state=$state"
echo "OC_OUTPUT active=$active"
if [ "$active" != true ]; then
  echo "restart_service: $name is not active after the restart ($state)" >&2
  exit 1
fi
