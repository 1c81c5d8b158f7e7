#!/usr/bin/env bash
# Starts a software TPM (swtpm, TPM 2.0) whose state lives in DIR, listening on Unix sockets
# DIR/tpm.sock (commands) and DIR/tpm.sock.ctrl (control), and prints its TCTI string.
# Usage: scripts/swtpm.sh DIR    The swtpm process runs in the background; its pid is in DIR/swtpm.pid.
set -euo pipefail
dir=${1:?usage: swtpm.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ -f "$dir/swtpm.pid" ] && kill -0 "$(cat "$dir/swtpm.pid")" 2>/dev/null; then
  echo "swtpm:path=$dir/tpm.sock"
  exit 0
fi
rm -f "$dir/tpm.sock" "$dir/tpm.sock.ctrl"
swtpm socket --tpm2 --tpmstate dir="$dir" \
  --server type=unixio,path="$dir/tpm.sock" --ctrl type=unixio,path="$dir/tpm.sock.ctrl" \
  --flags not-need-init,startup-clear --pid file="$dir/swtpm.pid" --log file="$dir/swtpm.log" --daemon
for _ in $(seq 1 50); do
  [ -S "$dir/tpm.sock" ] && break
  sleep 0.1
done
[ -S "$dir/tpm.sock" ] || { echo "swtpm did not start; see $dir/swtpm.log" >&2; exit 1; }
echo "swtpm:path=$dir/tpm.sock"
