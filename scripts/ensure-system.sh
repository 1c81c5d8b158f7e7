#!/usr/bin/env bash
# Installs the system packages attestd needs to build, run against a software TPM and test:
# swtpm (software TPM), the tpm2-tss libraries (ESYS, MU, TCTI loader and TCTIs) and
# tpm2-tools (an independent TPM client used for cross-checks). Idempotent: does nothing
# when everything is present.
set -euo pipefail

need=()
command -v swtpm >/dev/null 2>&1 || need+=(swtpm)
command -v swtpm_setup >/dev/null 2>&1 || need+=(swtpm-tools)
command -v tpm2_quote >/dev/null 2>&1 || need+=(tpm2-tools)
# swtpm_localca signs the EK certificates of test TPMs with certtool; the tests make a
# second, untrusted CA with openssl.
command -v certtool >/dev/null 2>&1 || need+=(gnutls-bin)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The tpm2-tss libraries the FFI layer loads (libtss2-dev pulls in all of them). The cache is
# read once: `ldconfig -p | grep -q` would fail under pipefail when grep exits early.
libs=$(ldconfig -p 2>/dev/null || true)
for lib in libtss2-esys.so.0 libtss2-mu.so.0 libtss2-tctildr.so.0 libtss2-rc.so.0 libtss2-tcti-swtpm.so.0 libtss2-tcti-device.so.0; do
  case "$libs" in *"$lib "*) ;; *) need+=(libtss2-dev); break ;; esac
done
command -v cc >/dev/null 2>&1 || need+=(build-essential)
# For the test suite only (`ensure-system.sh --test`): package checks, unit verification and
# the Python client's tests.
if [ "${1:-}" = "--test" ]; then
  command -v lintian >/dev/null 2>&1 || need+=(lintian)
  command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
  command -v dpkg-shlibdeps >/dev/null 2>&1 || need+=(dpkg-dev)
  command -v python3 >/dev/null 2>&1 || need+=(python3)
  # The fake NVML (test/fake-nvml) signs GPU reports with libcrypto, as a GPU would.
  [ -f /usr/include/openssl/evp.h ] || need+=(libssl-dev)
  # A second JWT implementation checks the attestation results' signatures (EdDSA needs cryptography).
  /usr/bin/python3 -c 'import jwt, cryptography' >/dev/null 2>&1 || need+=(python3-jwt python3-cryptography)
fi

if [ ${#need[@]} -eq 0 ]; then exit 0; fi

if [ "$(id -u)" -ne 0 ]; then
  echo "attestd: missing system packages: ${need[*]}; run as root or install them with apt-get" >&2
  exit 1
fi
echo "attestd: installing system packages: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
