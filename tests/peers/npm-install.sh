#!/bin/sh
# Install the pinned test peers from package-lock.json: `npm ci`, or, when npm refuses the lock
# because the registry in reach lacks packages it would list (litesvm's addons for other
# platforms are not on this machine's registry, so no lock written here can name them),
# `npm install --no-save` from the same lock, which installs the same versions and leaves the
# lock untouched.
set -e
cd "$(dirname "$0")"
if npm ci --no-audit --no-fund --loglevel=error 2>/tmp/ferry-npm-ci.$$; then
  rm -f /tmp/ferry-npm-ci.$$
  exit 0
fi
if grep -q 'EUSAGE' /tmp/ferry-npm-ci.$$; then
  rm -f /tmp/ferry-npm-ci.$$
  echo "npm ci refused the lock (packages for other platforms missing from this registry); installing from it with npm install --no-save" >&2
  exec npm install --no-save --no-audit --no-fund --loglevel=error
fi
cat /tmp/ferry-npm-ci.$$ >&2
rm -f /tmp/ferry-npm-ci.$$
exit 1
