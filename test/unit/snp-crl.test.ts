// AMD CRLs (issued and signed by a product's ARK, listing revoked ASKs and ASVKs) and the
// AMD profile's refusal of a CA-flagged VCEK or VLEK. No AMD CRL is among the recorded
// fixtures, so CRLs are minted: for a minted hierarchy, and under the real Milan ARK's name
// (signed by another key) for the recorded Milan reports.
import { describe, it, expect } from 'vitest';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { AttestdError } from '../../daemon/base/errors.js';
import { verifySnpReport, type SnpVerifyInput } from '../../daemon/verify/snp/verify.js';
import { verifyCvmEvidence } from '../../daemon/verify/cvm/verify.js';
import { snpCertsFromFiles } from '../../daemon/verify/cvm/snp-certs.js';
import { derOctets, mintCrl, mintHierarchy, mintReport, type Hierarchy } from './snp-mint.js';
import { amdChain, inputFor, validSamples } from './snp-helpers.js';
import { parseAmdCertificate } from '../../daemon/verify/snp/chain.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AttestdError);
    return (err as AttestdError).code;
  }
  return 'no error';
}

const CHIP = Buffer.alloc(64, 0x42);
const TCB = { bootloader: 3, tee: 0, snp: 8, microcode: 115 };
const ASK_SERIAL = 0x4a5b;
const milan = mintHierarchy('Milan', 'Milan-B0', TCB, derOctets(CHIP), { midSerial: ASK_SERIAL });
const AT = new Date('2030-01-01T00:00:00Z');

function input(h: Hierarchy, crls: Buffer[], over: Partial<SnpVerifyInput> = {}): SnpVerifyInput {
  const report = mintReport({ version: 2, reportedTcb: [3, 0, 0, 0, 0, 0, 8, 115], chipId: CHIP }, h.vcekKey);
  return { report, cert: h.vcek, chain: { ask: h.ask, ark: h.ark }, at: AT, trustedArks: [h.ark], crls, ...over };
}

describe('AMD CRL', () => {
  it('passes with a current CRL from the ARK that does not list the ASK, and says it checked', () => {
    const crl = mintCrl({ issuer: 'ARK-Milan', signer: milan.arkKey, revoked: [0x77] });
    const seen: string[] = [];
    verifySnpReport({ ...input(milan, [crl]), onCheck: (c, ok, d) => c === 'revocation' && seen.push(`${ok} ${d}`) });
    expect(seen).toEqual(['true ASK not revoked (1 CRL)']);
  });

  it('refuses a chain whose ASK the ARK revoked', () => {
    const crl = mintCrl({ issuer: 'ARK-Milan', signer: milan.arkKey, revoked: [0x77, ASK_SERIAL] });
    expect(codeOf(() => verifySnpReport(input(milan, [crl])))).toBe('CERT_REVOKED');
  });

  it('refuses a CRL under the ARK name that the ARK did not sign', () => {
    const forger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const crl = mintCrl({ issuer: 'ARK-Milan', signer: forger, revoked: [] });
    expect(codeOf(() => verifySnpReport(input(milan, [crl])))).toBe('SNP_CERT_CHAIN_INVALID');
  });

  it('refuses a CRL past its nextUpdate or not yet issued', () => {
    const old = mintCrl({ issuer: 'ARK-Milan', signer: milan.arkKey, revoked: [], thisUpdate: new Date('2025-01-01T00:00:00Z'), nextUpdate: new Date('2025-02-01T00:00:00Z') });
    expect(codeOf(() => verifySnpReport(input(milan, [old])))).toBe('COLLATERAL_STALE');
    const future = mintCrl({ issuer: 'ARK-Milan', signer: milan.arkKey, revoked: [], thisUpdate: new Date('2035-01-01T00:00:00Z') });
    expect(codeOf(() => verifySnpReport(input(milan, [future])))).toBe('COLLATERAL_STALE');
  });

  it('passes over a CRL of another product, and refuses one that does not parse', () => {
    const genoa = mintHierarchy('Genoa', 'Genoa', TCB, derOctets(CHIP));
    const crl = mintCrl({ issuer: 'ARK-Genoa', signer: genoa.arkKey, revoked: [ASK_SERIAL] });
    expect(verifySnpReport(input(milan, [crl])).product).toBe('Milan');
    const cut = crl.subarray(0, crl.length - 5);
    expect(codeOf(() => verifySnpReport(input(milan, [cut])))).toBe('SNP_CERT_CHAIN_INVALID');
  });

  it('a recorded Milan report is refused with a CRL under the real ARK-Milan name not signed by AMD', () => {
    const sample = validSamples()[0]!;
    const forger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const arkName = parseAmdCertificate(amdChain(sample.chainFile).ark).subject;
    const crl = mintCrl({ issuer: 'ARK-Milan', issuerName: arkName, signer: forger, revoked: [0] });
    expect(verifySnpReport(inputFor(sample)).product).toBe('Milan');
    expect(codeOf(() => verifySnpReport({ ...inputFor(sample), crls: [crl] }))).toBe('SNP_CERT_CHAIN_INVALID');
  });

  it('the CVM verifier takes AMD CRLs from the collateral files (DER and PEM)', () => {
    const binding = randomBytes(32);
    const report = mintReport({ version: 2, reportedTcb: [3, 0, 0, 0, 0, 0, 8, 115], chipId: CHIP, reportData: Buffer.concat([binding, Buffer.alloc(32)]) }, milan.vcekKey);
    const certs = [{ name: 'vcek.der', bytes: milan.vcek }, { name: 'ask.der', bytes: milan.ask }, { name: 'ark.der', bytes: milan.ark }];
    const roots = { amd: [milan.ark] };
    expect(verifyCvmEvidence({ kind: 'snp', report, collateral: certs, binding, at: AT, roots }).ok).toBe(true);
    const revoking = mintCrl({ issuer: 'ARK-Milan', signer: milan.arkKey, revoked: [ASK_SERIAL] });
    const pem = `-----BEGIN X509 CRL-----\n${revoking.toString('base64')}\n-----END X509 CRL-----\n`;
    expect(snpCertsFromFiles([{ name: 'crl.pem', bytes: Buffer.from(pem) }]).crls).toHaveLength(1);
    for (const bytes of [revoking, Buffer.from(pem)]) {
      const v = verifyCvmEvidence({ kind: 'snp', report, collateral: [...certs, { name: 'crl', bytes }], binding, at: AT, roots });
      expect(v).toMatchObject({ ok: false, reason: { code: 'CERT_REVOKED' } });
    }
  });
});

describe('a CA-flagged VCEK or VLEK', () => {
  it('is refused even though every signature verifies', () => {
    const ca = mintHierarchy('Milan', 'Milan-B0', TCB, derOctets(CHIP), { leafCa: true });
    expect(codeOf(() => verifySnpReport(input(ca, [])))).toBe('SNP_CERT_CHAIN_INVALID');
    const vlekCa = mintHierarchy('Milan', 'Milan-B0', TCB, Buffer.alloc(0), { vlek: true, leafCa: true });
    const report = mintReport({ version: 2, reportedTcb: [3, 0, 0, 0, 0, 0, 8, 115], chipId: Buffer.alloc(64), signingKey: 1 }, vlekCa.vcekKey);
    expect(codeOf(() => verifySnpReport({ report, cert: vlekCa.vcek, chain: { asvk: vlekCa.ask, ark: vlekCa.ark }, at: AT, trustedArks: [vlekCa.ark] })))
      .toBe('SNP_CERT_CHAIN_INVALID');
  });

  it('the recorded VCEKs and VLEK are not CAs and pass', () => {
    for (const s of validSamples()) expect(verifySnpReport(inputFor(s)).product).toBe('Milan');
  });
});
