#!/usr/bin/env bash
# npm run bench: benchmarks, each figure printed beside a baseline measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh
node --expose-gc dist/scripts/bench/main.js "$@"
