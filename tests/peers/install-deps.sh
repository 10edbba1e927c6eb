#!/usr/bin/env bash
# Install everything ferry needs to build, test and bench on Debian 12 (called by `make deps`).
#
#   * Debian packages: compiler, Lua 5.4 + busted, the C libraries, redis-server,
#     and nodejs/npm unless `node` and `npm` are already on PATH.
#   * The pinned npm test peers in tests/peers (anvil, cast, bench libraries) via `npm ci`.
#
# Idempotent and quiet on success: if every package is already installed apt is not touched,
# and `npm ci` is skipped when node_modules already matches package-lock.json.
# Runs as root; as another user it uses sudo for apt only. On failure the captured log is printed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

pkgs=(build-essential pkg-config clang libclang-rt-14-dev liblua5.4-dev lua5.4 lua-busted lua-check
      libuv1-dev libcurl4-openssl-dev libhiredis-dev libwebsockets-dev libsecp256k1-dev
      libsodium-dev nettle-dev libsqlite3-dev libedit-dev redis-server)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  pkgs+=(nodejs npm)
fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
run() {   # run quietly; on failure show what happened and stop
  if ! "$@" >>"$log" 2>&1; then
    echo "install-deps: failed: $*" >&2
    cat "$log" >&2
    exit 1
  fi
}

missing=()
for p in "${pkgs[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)"
  [ "${status:0:2}" = "ii" ] || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # Refresh the package lists only if there are none, or they are over a day old.
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 -print -quit 2>/dev/null)" ]; then
    run as_root apt-get update -q
  fi
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >>"$log" 2>&1; then
    # Lists may be stale (mirror moved a version on): refresh once and retry.
    run as_root apt-get update -q
    run as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# npm ci wipes and reinstalls node_modules, so only run it when the lockfile changed.
stamp="$here/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$here/package-lock.json" -nt "$stamp" ] || [ "$here/package.json" -nt "$stamp" ]; then
  run "$here/npm-install.sh"
fi
