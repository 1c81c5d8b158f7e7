#!/usr/bin/env bash
# Builds the identification tests' caller (peer_helper.c) in two variants with different
# digests, OUTDIR/peer-helper-a and OUTDIR/peer-helper-b.
# Usage: test/peer-helper/build.sh OUTDIR
set -euo pipefail
out="${1:?usage: build.sh OUTDIR}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$out"
for variant in a b; do
  # Build under a temporary name, then rename: concurrent test workers may build at once.
  tmp="$(mktemp "$out/.peer-helper.XXXXXX")"
  trap 'rm -f "$tmp"' EXIT
  "${CC:-cc}" -std=c11 -O1 -Wall -Wextra -Werror -DVARIANT="\"$variant\"" -o "$tmp" "$here/peer_helper.c"
  mv -f "$tmp" "$out/peer-helper-$variant"
  trap - EXIT
done
