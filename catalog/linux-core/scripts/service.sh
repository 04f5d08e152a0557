#!/bin/sh
# linux-core service steps, one subcommand each (the manifest's `args`; a script step uploads one
# file, so the steps share this one):
#   status   service_status: state of a service
#   restart  restart_service: restarts a service, then reports the new state
# Both use systemd when it is the running init, else the SysV `service` command, else fail with a
# clear "no service manager" message. Messages start with the step's name.
# OC_PARAM_SERVICE is checked against the unit-name character set (a letter or digit first, so
# it can never read as an option) and passed as one quoted argument; nothing is evaluated.
# status: OC_PARAM_REQUIRE_ACTIVE=true fails when the service is not active.
# restart: OC_PARAM_USE_SUDO=true runs the restart through `sudo -n` (never prompts: fails
# without passwordless sudo).
# Exit codes: 0 state read (status) / restarted and active (restart); 1 no service manager,
# unknown service, not active with require_active, restart failed or not active afterwards;
# 2 invalid parameter or unknown subcommand.
set -u

case ${1:-} in
  status) step=service_status ;;
  restart) step=restart_service ;;
  *) echo "service.sh: usage: service.sh status|restart (got '${1:-}')" >&2; exit 2 ;;
esac

name=${OC_PARAM_SERVICE:-}
require_active=${OC_PARAM_REQUIRE_ACTIVE:-false}
use_sudo=${OC_PARAM_USE_SUDO:-false}

case $name in
  [A-Za-z0-9]*) ;;
  *) echo "$step: service must start with a letter or digit (got '$name')" >&2; exit 2 ;;
esac
case $name in
  *[!A-Za-z0-9@._:\\-]*) echo "$step: service may contain only letters, digits and @ . _ : - \\ (got '$name')" >&2; exit 2 ;;
esac
if [ "$step" = restart_service ] && [ "$use_sudo" = true ] && ! command -v sudo >/dev/null 2>&1; then
  echo "$step: use_sudo is set but sudo is not installed on this host" >&2
  exit 1
fi

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
elif command -v service >/dev/null 2>&1; then
  manager=service
else
  echo "OC_OUTPUT manager=none"
  echo "$step: no service manager: systemd is not running (systemctl: $systemd_state) and there is no 'service' command on PATH ($PATH)" >&2
  exit 1
fi

read_props() { props=$(systemctl show --no-pager --property=Id,LoadState,ActiveState,SubState,UnitFileState,MainPID -- "$name"); }
prop() { printf '%s\n' "$props" | sed -n "s/^$1=//p" | head -n 1; }
unit_missing() {
  [ "$(prop LoadState)" = not-found ] || return 1
  echo "$step: systemd has no unit '$name'" >&2
}
sysv_unknown() {
  printf '%s\n' "$text" | grep -q 'unrecognized service' || return 1
  echo "$step: the service command knows no service '$name'" >&2
}
report() {
  echo "OC_OUTPUT service=$name"
  echo "OC_OUTPUT state=$state"
  echo "OC_OUTPUT active=$active"
}
# Runs a command, through sudo when asked.
privileged() {
  if [ "$use_sudo" = true ]; then sudo -n "$@"; else "$@"; fi
}

show_status() {
  if [ "$manager" = systemd ]; then
    read_props || exit 1
    if unit_missing; then echo "OC_OUTPUT manager=systemd"; exit 1; fi
    state=$(prop ActiveState)
    sub_state=$(prop SubState)
    active=false
    [ "$state" = active ] && active=true
    echo "$(prop Id): $state ($sub_state), $(prop UnitFileState)"
    echo "OC_OUTPUT unit=$(prop Id)"
    echo "OC_OUTPUT sub_state=$sub_state"
    echo "OC_OUTPUT enabled=$(prop UnitFileState)"
    echo "OC_OUTPUT main_pid=$(prop MainPID)"
  else
    text=$(service "$name" status 2>&1)
    code=$?
    printf '%s\n' "$text"
    # LSB status codes: 0 running, 1-3 stopped (stale pid file, stale lock, not running), 4 unknown.
    case $code in
      0) state=running active=true ;;
      1 | 2 | 3) state=stopped active=false ;;
      *) state=unknown active=false ;;
    esac
    if sysv_unknown; then echo "OC_OUTPUT manager=service"; exit 1; fi
    echo "OC_OUTPUT status_code=$code"
  fi
  echo "OC_OUTPUT manager=$manager"
  report
  if [ "$require_active" = true ] && [ "$active" != true ]; then
    echo "$step: $name is not active ($state)" >&2
    exit 1
  fi
}

do_restart() {
  echo "OC_OUTPUT manager=$manager"
  if [ "$manager" = systemd ]; then
    read_props
    unit_missing && exit 1
    if ! privileged systemctl restart --no-ask-password -- "$name"; then
      read_props
      echo "OC_OUTPUT state=$(prop ActiveState)"
      echo "OC_OUTPUT active=false"
      echo "$step: systemctl restart $name failed" >&2
      exit 1
    fi
    read_props
    state=$(prop ActiveState)
    echo "$(prop Id) restarted: $state ($(prop SubState)), main PID $(prop MainPID)"
    echo "OC_OUTPUT unit=$(prop Id)"
    echo "OC_OUTPUT main_pid=$(prop MainPID)"
    [ "$state" = active ] && active=true || active=false
  else
    text=$(privileged service "$name" restart 2>&1)
    code=$?
    printf '%s\n' "$text"
    sysv_unknown && exit 1
    if [ "$code" -ne 0 ]; then
      echo "OC_OUTPUT active=false"
      echo "$step: service $name restart failed (exit code $code)" >&2
      exit 1
    fi
    if service "$name" status >/dev/null 2>&1; then state=running active=true; else state=stopped active=false; fi
  fi
  report
  if [ "$active" != true ]; then
    echo "$step: $name is not active after the restart ($state)" >&2
    exit 1
  fi
}

if [ "$step" = service_status ]; then show_status; else do_restart; fi
