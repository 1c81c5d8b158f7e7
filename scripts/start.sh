#!/usr/bin/env bash
# npm start: runs attestd in the foreground for development. Installs what is missing and
# serves leases on $ATTESTD_STATE_DIR/attestd.sock (default .attestd/). Without a TPM device
# it starts a software TPM with its state under the same folder and uses the dev policy; on a
# host with /dev/tpmrm0 it uses that TPM and, unless ATTESTD_POLICY names one, a starting
# policy written once from the host's present state by `attestctl policy init`.
# To choose: ATTESTD_TCTI=... ATTESTD_POLICY=your-policy.yaml npm start
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh

state=${ATTESTD_STATE_DIR:-.attestd}
mkdir -p "$state"
state=$(cd "$state" && pwd)
policy=${ATTESTD_POLICY:-policies/dev.yaml}

if [ -z "${ATTESTD_TCTI:-}" ] && [ -c /dev/tpmrm0 ]; then
  ATTESTD_TCTI=device:/dev/tpmrm0
  if [ -z "${ATTESTD_POLICY:-}" ]; then
    policy=$state/policy.yaml
    if [ ! -f "$policy" ]; then
      node dist/daemon/cli/attestctl.js policy init --tcti "$ATTESTD_TCTI" --output "$policy"
      echo "attestd: wrote $policy from this host's present state; review it before trusting it" >&2
    fi
  fi
fi

if [ -z "${ATTESTD_TCTI:-}" ]; then
  tcti=$(bash scripts/swtpm.sh "$state/swtpm")
  # The software TPM lives as long as this script.
  trap 'kill "$(cat "$state/swtpm/swtpm.pid" 2>/dev/null)" 2>/dev/null || true' EXIT
else
  tcti=$ATTESTD_TCTI
fi
echo "$tcti" > "$state/tcti"

socket=${ATTESTD_SOCKET:-$state/attestd.sock}
echo "attestd: socket $socket" >&2
echo "attestd: TCTI $tcti (written to $state/tcti; drive a drift with:" >&2
echo "  TPM2TOOLS_TCTI=\$(cat $state/tcti) tpm2_pcrextend 16:sha256=$(printf '%064d' 1) )" >&2
echo "attestd: try: ATTESTD_SOCKET=$socket node dist/daemon/cli/attestctl.js status" >&2
node dist/daemon/main.js --tcti "$tcti" --policy "$policy" --state-dir "$state" --socket "$socket" \
  --log-level "${ATTESTD_LOG_LEVEL:-info}" &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null; wait $daemon; kill "$(cat "$state/swtpm/swtpm.pid" 2>/dev/null)" 2>/dev/null || true' EXIT INT TERM
trap 'kill -HUP $daemon' HUP
wait $daemon
