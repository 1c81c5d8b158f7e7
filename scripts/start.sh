#!/usr/bin/env bash
# npm start: runs attestd in the foreground for development. Installs what is missing and
# serves leases on $ATTESTD_STATE_DIR/attestd.sock (default .attestd/). Without a TPM device
# it starts a software TPM with its state under the same folder and uses the dev policy; on a
# host with /dev/tpmrm0 it uses that TPM and, unless ATTESTD_POLICY names one, a starting
# policy written once from the host's present state by `attestctl policy init`.
# To choose: ATTESTD_TCTI=... ATTESTD_POLICY=your-policy.yaml npm start
# It prints the line that puts this checkout's bin/ (attestctl, attestd, attestd-oci-hook) on
# PATH and points attestctl at the socket, for another terminal.
# ATTESTD_START_SKIP_BUILD=1 runs dist/ as it is, without scripts/prepare.sh (the tests use it:
# they must not rebuild a tree that others are running).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
if [ "${ATTESTD_START_SKIP_BUILD:-0}" != 1 ]; then bash scripts/prepare.sh; fi

state=${ATTESTD_STATE_DIR:-.attestd}
mkdir -p "$state"
state=$(cd "$state" && pwd)
policy=${ATTESTD_POLICY:-policies/dev.yaml}

if [ -z "${ATTESTD_TCTI:-}" ] && [ -c /dev/tpmrm0 ]; then
  ATTESTD_TCTI=device:/dev/tpmrm0
  if [ -z "${ATTESTD_POLICY:-}" ]; then
    policy=$state/policy.yaml
    if [ ! -f "$policy" ]; then
      bin/attestctl policy init --tcti "$ATTESTD_TCTI" --output "$policy"
      echo "attestd: wrote $policy from this host's present state; review it before trusting it" >&2
    fi
  fi
fi

stop_swtpm() { :; }
if [ -z "${ATTESTD_TCTI:-}" ]; then
  tcti=$(bash scripts/swtpm.sh "$state/swtpm")
  # The software TPM lives as long as this script, and is shut down in order when it stops
  # (TPM2_Shutdown before the power goes), as firmware does on a real host. A dictionary-attack
  # lockout left by earlier runs is cleared: this is a development TPM with an empty lockout
  # authorization. attestd's own keys are noDA and never add to the lockout counter; this is
  # for whatever else was run against the same software TPM. Never done to a real TPM.
  TPM2TOOLS_TCTI=$tcti tpm2_dictionarylockout --clear-lockout >/dev/null 2>&1 ||
    echo "attestd: could not clear the software TPM's dictionary-attack lockout" >&2
  stop_swtpm() {
    TPM2TOOLS_TCTI=$tcti tpm2_shutdown --clear >/dev/null 2>&1 ||
      echo "attestd: the software TPM did not take TPM2_Shutdown; it stops without one" >&2
    kill "$(cat "$state/swtpm/swtpm.pid" 2>/dev/null)" 2>/dev/null || true
  }
  trap stop_swtpm EXIT
else
  tcti=$ATTESTD_TCTI
fi
echo "$tcti" > "$state/tcti"

socket=${ATTESTD_SOCKET:-$state/attestd.sock}
echo "attestd: socket $socket" >&2
echo "attestd: TCTI $tcti (written to $state/tcti; drive a drift with:" >&2
echo "  TPM2TOOLS_TCTI=\$(cat $state/tcti) tpm2_pcrextend 16:sha256=$(printf '%064d' 1) )" >&2
echo "attestd: in another terminal, for attestctl:" >&2
printf '  export PATH=%q:"$PATH" ATTESTD_SOCKET=%q\n  attestctl status\n' "$root/bin" "$socket" >&2
bin/attestd --tcti "$tcti" --policy "$policy" --state-dir "$state" --socket "$socket" \
  --log-level "${ATTESTD_LOG_LEVEL:-info}" &
daemon=$!
# Ctrl-C, a TERM or the daemon's own exit: stop the daemon, then the software TPM, in that
# order, once. (Under set -e a failing step in a trap would end it early: each one may fail.)
cleanup() {
  trap - EXIT INT TERM
  kill -TERM "$daemon" 2>/dev/null || true
  wait "$daemon" 2>/dev/null || true
  stop_swtpm
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'kill -HUP $daemon' HUP
wait $daemon
