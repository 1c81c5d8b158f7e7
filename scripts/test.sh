#!/usr/bin/env bash
# npm test: prepares the checkout like npm start, then lint, import layers, type check, protobuf drift check
# (a test), unit, fuzz and integration tests against a real software TPM.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh --test
echo "attestd: lint" >&2
npx --no-install eslint .
echo "attestd: import layers" >&2
npx --no-install depcruise daemon --config .dependency-cruiser.cjs --output-type err
echo "attestd: type check" >&2
npx --no-install tsc -p tsconfig.test.json
npx --no-install vitest run "$@"
