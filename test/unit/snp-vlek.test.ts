// SEV-SNP reports signed with a VLEK (ARK -> ASVK -> VLEK) through the epoch's CVM verifier:
// the report's SIGNING_KEY field picks the chain shape, from the host's table (the ASVK
// under the ASK GUID) or from collateral files; the recorded trustee VLEK report and a
// minted hierarchy.
import { describe, it, expect } from 'vitest';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { verifyCvmEvidence } from '../../daemon/verify/cvm/verify.js';
import { snpReportSigningKeyHint } from '../../daemon/verify/snp/report.js';
import { CERT_GUID, mintCertTable, mintHierarchy, mintReport } from './snp-mint.js';
import { amdChain, PINNED_AT, snpFixture } from './snp-helpers.js';

const AT = new Date('2030-01-01T00:00:00Z');
const TCB = { bootloader: 3, tee: 0, snp: 8, microcode: 115 };
const TCB_BYTES = [3, 0, 0, 0, 0, 0, 8, 115];
const vlek = mintHierarchy('Milan', 'Milan-B0', TCB, Buffer.alloc(0), { vlek: true });
const reportData = (binding: Buffer) => Buffer.concat([binding, Buffer.alloc(32)]);

describe('VLEK-signed reports in the CVM verifier', () => {
  it('verifies the recorded trustee VLEK report with the Milan ASVK chain from collateral files', () => {
    const { mid, ark } = amdChain('amd_asvk_ark_milan_vlek.pem');
    const files = [{ name: 'vlek.der', bytes: snpFixture('trustee_milan_vlek.der') }, { name: 'asvk', bytes: Buffer.from(mid) }, { name: 'ark', bytes: Buffer.from(ark) }];
    const report = snpFixture('trustee_milan_vlek_report.bin');
    expect(snpReportSigningKeyHint(report)).toBe('VLEK');
    // Chain, signature, TCB all verify; only the report data is not this epoch's binding.
    const v = verifyCvmEvidence({ kind: 'snp', report, collateral: files, binding: randomBytes(32), at: PINNED_AT });
    expect(v).toMatchObject({ ok: false, reason: { code: 'CVM_BINDING_MISMATCH' } });
    // A flipped report byte breaks the signature: the chain is not enough.
    const bad = Buffer.from(report);
    bad[0x90]! ^= 1;
    expect(verifyCvmEvidence({ kind: 'snp', report: bad, collateral: files, binding: randomBytes(32), at: PINNED_AT }))
      .toMatchObject({ ok: false, reason: { code: 'SNP_SIGNATURE_INVALID' } });
  });

  it('verifies a minted VLEK report over the binding from the host table (VLEK GUID, ASVK under the ASK GUID)', () => {
    const binding = randomBytes(32);
    const report = mintReport({ version: 2, reportedTcb: TCB_BYTES, chipId: Buffer.alloc(64), signingKey: 1, reportData: reportData(binding) }, vlek.vcekKey);
    const certTable = mintCertTable([[CERT_GUID.VLEK, vlek.vcek], [CERT_GUID.ASK, vlek.ask], [CERT_GUID.ARK, vlek.ark]]);
    const v = verifyCvmEvidence({ kind: 'snp', report, certTable, collateral: [], binding, at: AT, roots: { amd: [vlek.ark] } });
    expect(v, JSON.stringify(v)).toMatchObject({ ok: true, facts: { kind: 'snp', snp: { signingKey: 'VLEK' } } });
  });

  it('refuses a VLEK-signed report that claims a VCEK signed it', () => {
    const binding = randomBytes(32);
    const report = mintReport({ version: 2, reportedTcb: TCB_BYTES, chipId: Buffer.alloc(64), signingKey: 0, reportData: reportData(binding) }, vlek.vcekKey);
    const certTable = mintCertTable([[CERT_GUID.VLEK, vlek.vcek], [CERT_GUID.ASK, vlek.ask], [CERT_GUID.ARK, vlek.ark]]);
    const v = verifyCvmEvidence({ kind: 'snp', report, certTable, collateral: [], binding, at: AT, roots: { amd: [vlek.ark] } });
    expect(v).toMatchObject({ ok: false, reason: { code: 'SNP_CERT_CHAIN_INVALID' } });
  });

  it('refuses a minted VLEK report with a foreign root and with the pinned AMD roots', () => {
    const binding = randomBytes(32);
    const report = mintReport({ version: 2, reportedTcb: TCB_BYTES, chipId: Buffer.alloc(64), signingKey: 1, reportData: reportData(binding) }, vlek.vcekKey);
    const certTable = mintCertTable([[CERT_GUID.VLEK, vlek.vcek], [CERT_GUID.ASK, vlek.ask], [CERT_GUID.ARK, vlek.ark]]);
    expect(verifyCvmEvidence({ kind: 'snp', report, certTable, collateral: [], binding, at: AT })).toMatchObject({ ok: false, reason: { code: 'SNP_CERT_CHAIN_INVALID' } });
    const other = mintHierarchy('Milan', 'Milan-B0', TCB, Buffer.alloc(0), { vlek: true });
    expect(verifyCvmEvidence({ kind: 'snp', report, certTable, collateral: [], binding, at: AT, roots: { amd: [other.ark] } }))
      .toMatchObject({ ok: false, reason: { code: 'SNP_CERT_CHAIN_INVALID' } });
  });

  it('the SIGNING_KEY hint never throws on arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 1300 }), (b) => {
      const k = snpReportSigningKeyHint(b);
      expect(k === undefined || k === 'VCEK' || k === 'VLEK').toBe(true);
    }));
  });
});
