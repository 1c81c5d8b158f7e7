#!/usr/bin/env bash
# Brings a checkout to a runnable state: system packages, npm packages, the native core and
# the TypeScript build. Each step is skipped when its output is already up to date.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-system.sh "$@"

# npm packages: install from the lock file when node_modules is missing or older than it.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "attestd: installing npm packages" >&2
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
fi

# Native core and attestd-proc-opener: rebuild when either is missing or any source is newer
# than the addon.
addon=build/Release/attestd_native.node
if [ ! -f "$addon" ] || [ ! -f build/Release/attestd-proc-opener ] || [ -n "$(find native binding.gyp -newer "$addon" -print -quit)" ]; then
  echo "attestd: building the native core" >&2
  nodedir=(); [ -f /usr/include/node/node.h ] && nodedir=(--nodedir=/usr)
  log=$(mktemp)
  if ! npx --no-install node-gyp rebuild "${nodedir[@]}" > "$log" 2>&1; then
    cat "$log" >&2
    echo "attestd: native build failed" >&2
    exit 1
  fi
  rm -f "$log"
fi

# TypeScript: compile when a source is newer than the last build.
stamp=dist/.stamp
if [ ! -f "$stamp" ] || [ -n "$(find daemon scripts/bench tsconfig.json -newer "$stamp" -print -quit)" ]; then
  echo "attestd: compiling TypeScript" >&2
  npx --no-install tsc -p tsconfig.json
  touch "$stamp"
fi
