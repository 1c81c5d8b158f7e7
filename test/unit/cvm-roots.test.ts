// The confidential-VM trust roots: the folder the daemon and `attestctl audit verify` read
// (--cvm-roots DIR with amd/ and intel/), what a session records as in force, and the TDX
// verifier honouring configured Intel roots (the pinned one is the default).
import { describe, it, expect, afterEach } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { readCvmRoots } from '../../daemon/config/cvm-roots.js';
import { rootsInForce } from '../../daemon/verify/cvm/trust-roots.js';
import { AMD_ARK_SPKI_SHA256 } from '../../daemon/verify/snp/chain.js';
import { INTEL_SGX_ROOT_SPKI_SHA256 } from '../../daemon/verify/tdx/pck.js';
import { appraiseTdxQuote } from '../../daemon/verify/tdx/verify.js';
import { verifyCvmEvidence } from '../../daemon/verify/cvm/verify.js';
import { pemCertificates } from '../../daemon/verify/x509/pem.js';
import { derOctets, mintHierarchy } from './snp-mint.js';
import { amdChain, snpFixture } from './snp-helpers.js';
import { allCollateral, tdxFixture } from './tdx-helpers.js';

const milan = mintHierarchy('Milan', 'Milan-B0', { bootloader: 3, tee: 0, snp: 8, microcode: 115 }, derOctets(Buffer.alloc(64, 0x42)));
const intelRoot = pemCertificates(tdxFixture('intel_sgx_root_ca.pem'), 'INVALID_ARGUMENT')[0]!;
const pem = (der: Buffer) => `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`;

let dir: string;
function folder(files: Record<string, Buffer | string>): string {
  dir = mkdtempSync(join(tmpdir(), 'attestd-roots-'));
  for (const [name, bytes] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), bytes);
  }
  return dir;
}
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the --cvm-roots folder', () => {
  it('reads amd/ and intel/ roots, PEM or DER; a vendor without a folder keeps its pinned keys', () => {
    const roots = readCvmRoots(folder({ 'amd/test-ark.pem': pem(milan.ark), 'amd/milan-ark.der': Buffer.from(amdChain('amd_ask_ark_milan.pem').ark) }));
    expect(roots.amd).toHaveLength(2);
    expect(roots.intel).toBeUndefined();
    const inForce = rootsInForce(roots);
    expect(inForce.filter((r) => r.vendor === 'amd').every((r) => r.certificate)).toBe(true);
    expect(inForce.filter((r) => r.vendor === 'intel')).toEqual([{ vendor: 'intel', spkiSha256: INTEL_SGX_ROOT_SPKI_SHA256 }]);
    expect(inForce.map((r) => r.spkiSha256)).toContain(AMD_ARK_SPKI_SHA256.Milan);
  });

  it('without the option the pinned keys are in force', () => {
    expect(rootsInForce(undefined).map((r) => r.spkiSha256).sort()).toEqual([...Object.values(AMD_ARK_SPKI_SHA256), INTEL_SGX_ROOT_SPKI_SHA256].sort());
  });

  it.each([
    ['an intermediate (not self-signed)', { 'amd/ask.pem': pem(milan.ask) }],
    ['a file that is not a certificate', { 'amd/junk': randomBytes(40) }],
    ['an empty vendor folder', { 'intel/.keep': '' }],
    ['neither vendor folder', { 'other/x.pem': pem(milan.ark) }],
    ['an Intel root in the AMD folder (not RSA-PSS)', { 'amd/intel.pem': pem(intelRoot) }],
  ])('refuses %s', (_what, files) => {
    expect(() => readCvmRoots(folder(files))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('refuses a path that is not a folder', () => {
    expect(() => readCvmRoots('/nonexistent/roots')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('configured roots in the verifiers', () => {
  const at = new Date('2023-06-20T00:00:00Z');
  const SPR = 'gotdxguest_quote_v4_SPR_E4.dat';
  const pck = (roots?: { intel: Buffer[] }) => {
    const a = appraiseTdxQuote(tdxFixture(SPR), allCollateral(), { at, trustedRootSpkis: roots ? rootsInForce(roots).filter((r) => r.vendor === 'intel').map((r) => r.spkiSha256) : undefined });
    return a.checks.find((c) => c.name === 'pck.chain');
  };

  // Any self-signed certificate that is not Intel's serves as "another root": the minted ARK.
  it('TDX: the real PCK chain passes with the Intel root given explicitly, and fails when only another root is trusted', () => {
    expect(pck()?.status).toBe('pass');
    expect(pck({ intel: [intelRoot] })?.status).toBe('pass');
    const other = pck({ intel: [milan.ark] });
    expect(other).toMatchObject({ status: 'fail', code: 'TDX_CERT_CHAIN_INVALID' });
  });

  it('TDX through the CVM verifier: another Intel root refuses the real quote at the chain', () => {
    const v = verifyCvmEvidence({ kind: 'tdx', report: tdxFixture(SPR), collateral: allCollateral(), binding: randomBytes(32), at, roots: { intel: [milan.ark] } });
    expect(v).toMatchObject({ ok: false, reason: { code: 'TDX_CERT_CHAIN_INVALID' } });
  });

  it('SEV-SNP: configured AMD roots replace the pinned ones (a real Milan chain is refused under test roots only)', () => {
    const { mid, ark } = amdChain('amd_ask_ark_milan.pem');
    const files = [{ name: 'ask', bytes: Buffer.from(mid) }, { name: 'ark', bytes: Buffer.from(ark) }, { name: 'vcek', bytes: snpFixture('gosevguest_milan_vcek.der') }];
    const report = snpFixture('gosevguest_milan_attestation.bin');
    const pinned = verifyCvmEvidence({ kind: 'snp', report, collateral: files, binding: randomBytes(32), at: new Date('2025-06-01T00:00:00Z') });
    expect(pinned).toMatchObject({ ok: false, reason: { code: 'CVM_BINDING_MISMATCH' } });
    const onlyTest = verifyCvmEvidence({ kind: 'snp', report, collateral: files, binding: randomBytes(32), at: new Date('2025-06-01T00:00:00Z'), roots: { amd: [milan.ark] } });
    expect(onlyTest).toMatchObject({ ok: false, reason: { code: 'SNP_CERT_CHAIN_INVALID' } });
  });
});

