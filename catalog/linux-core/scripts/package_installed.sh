#!/bin/sh
# linux-core/package_installed: whether a package is installed, and its version, from the host's
# package database: dpkg (Debian, Ubuntu), rpm (RHEL, Fedora, SUSE), apk (Alpine) or pacman (Arch).
# OC_PARAM_PACKAGE is checked against the package-name character set (a letter or digit first, so
# it can never read as an option) and passed as one quoted argument; nothing is evaluated.
# Exit codes: 0 answered (installed or not), 1 not installed with fail_if_missing / no package
# manager, 2 invalid parameter.
set -u

package=${OC_PARAM_PACKAGE:-}
fail_if_missing=${OC_PARAM_FAIL_IF_MISSING:-false}

case $package in
  [A-Za-z0-9]*) ;;
  *) echo "package_installed: package must start with a letter or digit (got '$package')" >&2; exit 2 ;;
esac
case $package in
  *[!A-Za-z0-9+._:@-]*) echo "package_installed: package may contain only letters, digits and + . _ : @ - (got '$package')" >&2; exit 2 ;;
esac

installed=false
version=
if command -v dpkg-query >/dev/null 2>&1; then
  manager=dpkg
  # One line per architecture: "ii 1.2-3". The second status letter "i" means installed
  # ("rc": removed, configuration files left).
  line=$(dpkg-query -W -f '${db:Status-Abbrev} ${Version}\n' "$package" 2>/dev/null | grep '^.i' | head -n 1)
  if [ -n "$line" ]; then
    installed=true
    version=${line##* }
  fi
elif command -v rpm >/dev/null 2>&1; then
  manager=rpm
  if version=$(rpm -q --qf '%{VERSION}-%{RELEASE}\n' "$package" 2>/dev/null | head -n 1); then
    installed=true
  else
    version=
  fi
elif command -v apk >/dev/null 2>&1; then
  manager=apk
  if apk info -e "$package" >/dev/null 2>&1; then
    installed=true
    # "name-1.2.3-r0" with the name stripped.
    version=$(apk info -v "$package" 2>/dev/null | head -n 1 | sed "s/^$package-//")
  fi
elif command -v pacman >/dev/null 2>&1; then
  manager=pacman
  if line=$(pacman -Q "$package" 2>/dev/null); then
    installed=true
    version=${line##* }
  fi
else
  echo "package_installed: no known package manager (dpkg, rpm, apk or pacman) on this host" >&2
  exit 1
fi

if [ "$installed" = true ]; then
  echo "$package $version is installed ($manager)"
else
  echo "$package is not installed ($manager)"
fi
echo "OC_OUTPUT manager=$manager"
echo "OC_OUTPUT package=$package"
echo "OC_OUTPUT installed=$installed"
echo "OC_OUTPUT version=$version"
if [ "$installed" != true ] && [ "$fail_if_missing" = true ]; then
  echo "package_installed: $package is not installed" >&2
  exit 1
fi
