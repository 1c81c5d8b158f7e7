#!/usr/bin/env bash
# Builds the fake NVML (fake_nvml.c) as OUTDIR/libnvidia-ml.so.1 for the tests.
# Usage: test/fake-nvml/build.sh OUTDIR
set -euo pipefail
out="${1:?usage: build.sh OUTDIR}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$out"
# Build under a temporary name, then rename: concurrent test workers may build at once.
tmp="$(mktemp "$out/.libnvidia-ml.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
"${CC:-cc}" -std=c11 -O1 -fPIC -shared -Wall -Wextra -Werror -Wl,-soname,libnvidia-ml.so.1 \
  -o "$tmp" "$here/fake_nvml.c" -lcrypto
mv -f "$tmp" "$out/libnvidia-ml.so.1"
trap - EXIT
