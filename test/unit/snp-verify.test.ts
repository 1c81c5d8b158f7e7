import { describe, it, expect } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { verifySnpReport, SNP_CHECKS, type SnpCheck } from '../../daemon/verify/snp/verify.js';
import { verifySnpKeyCertificate } from '../../daemon/verify/snp/key-certificate.js';
import { parseSnpReport } from '../../daemon/verify/snp/report.js';
import { parseAmdExtensions } from '../../daemon/verify/snp/vcek-extensions.js';
import { checkTcbMatchesKey } from '../../daemon/verify/snp/key-match.js';
import { AMD_ARK_SPKI_SHA256, parseAmdCertificate as parseCertificate } from '../../daemon/verify/snp/chain.js';
import { spkiSha256 } from '../../daemon/verify/x509/certificate.js';
import { amdChain, inputFor, pemFixture, PINNED_AT, snpFixture, snpFromHcl, validSamples, type Sample } from './snp-helpers.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AttestdError);
    return (err as AttestdError).code;
  }
  return 'no error';
}

const sample = (name: string): Sample => {
  const s = validSamples().find((x) => x.name === name);
  if (!s) throw new Error(name);
  return s;
};
const trustee = (): Sample => sample('trustee milan vcek v2');
const bump = (b: Uint8Array, at: number, by = 1): Buffer => {
  const c = Buffer.from(b);
  c[at] = ((c[at] as number) + by) & 0xff;
  return c;
};

describe('recorded SEV-SNP reports verify end to end', () => {
  it.each(validSamples().map((s) => [s.name, s] as const))('%s', (_name, s) => {
    const seen: SnpCheck[] = [];
    const v = verifySnpReport({ ...inputFor(s), onCheck: (c, ok) => { expect(ok).toBe(true); seen.push(c); } });
    expect(seen).toEqual([...SNP_CHECKS]);
    expect(v.product).toBe('Milan');
    expect(v.signingKey).toBe(s.vlek ? 'VLEK' : 'VCEK');
    expect(v.arkSpkiSha256).toBe(AMD_ARK_SPKI_SHA256.Milan);
    expect(v.report.reportedTcb.bootloader).toBe(v.keyExtensions.bootloader);
    expect(v.report.reportedTcb.microcode).toBe(v.keyExtensions.microcode);
  });

  it('decodes the go-sev-guest report as SOURCES.md describes it', () => {
    const v = verifySnpReport(inputFor(sample('gosevguest milan v2')));
    const r = v.report;
    expect(r.version).toBe(2);
    expect(r.vmpl).toBe(0);
    expect(r.policy.raw).toBe('00000000000b0000');
    expect(r.policy).toMatchObject({ smt: true, debug: true, migrateMa: false, singleSocket: false, abiMajor: 0, abiMinor: 0 });
    expect(r.reportData).toBe('0102030405' + '00'.repeat(59));
    expect(r.reportedTcb).toEqual({ raw: '4405000000000002', bootloader: 2, tee: 0, snp: 5, microcode: 68 });
    expect(r.chipId.startsWith('3ac3fe21')).toBe(true);
    expect(r.cpuid).toBeUndefined();
    expect(v.keyExtensions.productName).toBe('Milan-B0');
  });

  it('decodes the VLEK report: version 3 with CPUID, VMPL 1, zero chip id, csp id in the VLEK', () => {
    const v = verifySnpReport(inputFor(sample('trustee milan vlek v3')));
    expect(v.report.cpuid).toEqual({ family: 0x19, model: 0x01, stepping: 1 });
    expect(v.report.vmpl).toBe(1);
    expect(v.report.signingKey).toBe('VLEK');
    expect(v.report.chipId).toBe('00'.repeat(64));
    expect(v.report.reportedTcb).toMatchObject({ bootloader: 4, snp: 24, microcode: 217 });
    expect(v.keyExtensions.cspId).toBe('CN=cc-us-east-2.amazonaws.com');
    expect(v.keyExtensions.hwId).toBeUndefined();
  });

  it('the VLEK expired on 2025-12-10: COLLATERAL_STALE at a later time, as by default now', () => {
    const s = sample('trustee milan vlek v3');
    expect(codeOf(() => verifySnpReport(inputFor(s, new Date('2025-12-11T00:00:00Z'))))).toBe('COLLATERAL_STALE');
    expect(codeOf(() => verifySnpReport({ ...inputFor(s), at: undefined }))).toBe('COLLATERAL_STALE');
    expect(codeOf(() => verifySnpReport(inputFor(trustee(), new Date('2022-01-01T00:00:00Z'))))).toBe('COLLATERAL_STALE');
  });
});

describe('Genoa and Turin keys chain to their roots (no report of theirs was published)', () => {
  it('Genoa VCEK -> SEV-Genoa -> ARK-Genoa', () => {
    const { mid, ark } = amdChain('amd_ask_ark_genoa.pem');
    const [vcek] = pemFixture('azure_snp_vtpm_vcek_genoa.pem');
    const v = verifySnpKeyCertificate({ cert: vcek as Uint8Array, chain: { ask: mid, ark }, at: PINNED_AT });
    expect(v).toMatchObject({ kind: 'VCEK', product: 'Genoa', arkSpkiSha256: AMD_ARK_SPKI_SHA256.Genoa });
    expect(v.extensions.hwId).toHaveLength(128);
  });

  it('Turin VCEK: FMC SPL and an 8-byte hwID', () => {
    const { mid, ark } = amdChain('amd_ask_ark_turin.pem');
    const v = verifySnpKeyCertificate({ cert: snpFixture('virteesev_turin_vcek.der'), chain: { ask: mid, ark }, at: PINNED_AT });
    expect(v).toMatchObject({ kind: 'VCEK', product: 'Turin', arkSpkiSha256: AMD_ARK_SPKI_SHA256.Turin });
    expect(v.extensions).toMatchObject({ productName: 'Turin', fmc: 0, bootloader: 0, tee: 0, snp: 0, microcode: 9, hwId: '1e550a8ee5cf9f4d' });
  });

  it('the pinned ARK keys are those of the six recorded KDS chains', () => {
    for (const [file, product] of [
      ['amd_ask_ark_milan.pem', 'Milan'], ['amd_ask_ark_genoa.pem', 'Genoa'], ['amd_ask_ark_turin.pem', 'Turin'],
      ['amd_asvk_ark_milan_vlek.pem', 'Milan'], ['amd_asvk_ark_genoa_vlek.pem', 'Genoa'], ['amd_asvk_ark_turin_vlek.pem', 'Turin'],
    ] as const) {
      const { mid, ark } = amdChain(file);
      expect(spkiSha256(parseCertificate(ark))).toBe(AMD_ARK_SPKI_SHA256[product]);
      expect(parseCertificate(mid).commonName).toBe(file.includes('vlek') ? `SEV-VLEK-${product}` : `SEV-${product}`);
    }
  });

  it('a Turin VCEK fails under the Milan chain, the Genoa VCEK under Turin', () => {
    const milan = amdChain('amd_ask_ark_milan.pem');
    const turin = amdChain('amd_ask_ark_turin.pem');
    const [genoaVcek] = pemFixture('azure_snp_vtpm_vcek_genoa.pem');
    expect(codeOf(() => verifySnpKeyCertificate({ cert: snpFixture('virteesev_turin_vcek.der'), chain: { ask: milan.mid, ark: milan.ark }, at: PINNED_AT }))).toBe('SNP_CERT_CHAIN_INVALID');
    expect(codeOf(() => verifySnpKeyCertificate({ cert: genoaVcek as Uint8Array, chain: { ask: turin.mid, ark: turin.ark }, at: PINNED_AT }))).toBe('SNP_CERT_CHAIN_INVALID');
  });
});

describe('tamper recipes and shipped negatives (SOURCES.md)', () => {
  it('report[42] += 1 fails the signature', () => {
    expect(codeOf(() => verifySnpReport({ ...inputFor(trustee()), report: bump(trustee().report, 42) }))).toBe('SNP_SIGNATURE_INVALID');
    const vlek = sample('trustee milan vlek v3');
    expect(codeOf(() => verifySnpReport({ ...inputFor(vlek), report: bump(vlek.report, 42) }))).toBe('SNP_SIGNATURE_INVALID');
  });

  it('report[384] += 1: the signature fails first; the TCB check on its own says SNP_TCB_MISMATCH', () => {
    for (const s of [trustee(), sample('trustee milan vlek v3')]) {
      const tampered = bump(s.report, 384);
      expect(codeOf(() => verifySnpReport({ ...inputFor(s), report: tampered }))).toBe('SNP_SIGNATURE_INVALID');
      const ext = parseAmdExtensions(parseCertificate(s.cert).extensions);
      expect(() => checkTcbMatchesKey(parseSnpReport(s.report), ext)).not.toThrow();
      expect(codeOf(() => checkTcbMatchesKey(parseSnpReport(tampered), ext))).toBe('SNP_TCB_MISMATCH');
    }
  });

  it('vcek_der[42] += 1 fails the chain', () => {
    expect(codeOf(() => verifySnpReport({ ...inputFor(trustee()), cert: bump(trustee().cert, 42) }))).toBe('SNP_CERT_CHAIN_INVALID');
  });

  it('the ASVK in place of the ASK fails the chain', () => {
    const { mid: asvk, ark } = amdChain('amd_asvk_ark_milan_vlek.pem');
    expect(codeOf(() => verifySnpReport({ ...inputFor(trustee()), chain: { ask: asvk, ark } }))).toBe('SNP_CERT_CHAIN_INVALID');
    // Labelled as an ASVK, a VCEK still fails: its issuer is SEV-Milan.
    expect(codeOf(() => verifySnpReport({ ...inputFor(trustee()), chain: { asvk, ark } }))).toBe('SNP_CERT_CHAIN_INVALID');
  });

  it('virtee recipes: report[21] ^= 0x80 fails; Turin vcek_der[40] ^= 0xff fails the chain', () => {
    expect(codeOf(() => verifySnpReport({ ...inputFor(trustee()), report: bump(trustee().report, 21, 0x80) }))).toBe('SNP_SIGNATURE_INVALID');
    const { mid, ark } = amdChain('amd_ask_ark_turin.pem');
    const turin = Buffer.from(snpFixture('virteesev_turin_vcek.der'));
    turin[40] = (turin[40] as number) ^ 0xff;
    expect(codeOf(() => verifySnpKeyCertificate({ cert: turin, chain: { ask: mid, ark }, at: PINNED_AT }))).toBe('SNP_CERT_CHAIN_INVALID');
  });

  it('a flip anywhere in the signed region fails the signature (sampled), a flip of r or s too', () => {
    for (const at of [0x00, 0x04, 0x50, 0x90, 0xc0, 0x140, 0x1a0, 0x1e0, 0x29f, 0x2a0, 0x2e8 + 47]) {
      const s = trustee();
      const code = codeOf(() => verifySnpReport({ ...inputFor(s), report: bump(s.report, at, 0x01) }));
      expect(['SNP_SIGNATURE_INVALID', 'CVM_REPORT_MALFORMED']).toContain(code);
      if (at !== 0x00) expect(code).toBe('SNP_SIGNATURE_INVALID');
    }
  });

  it('Azure HCL: hcl[0x1a6] = 0 fails the SNP report signature', () => {
    const hcl = Buffer.from(snpFixture('azure_snp_vtpm_hcl_report_milan.bin'));
    hcl[0x1a6] = 0;
    expect(codeOf(() => verifySnpReport({ ...inputFor(sample('azure hcl report')), report: snpFromHcl(hcl) }))).toBe('SNP_SIGNATURE_INVALID');
  });

  it('the legacy- and new-encoding VCEKs do not verify under the Milan ASK, yet their extensions parse', () => {
    for (const file of ['trustee_vcek_legacy_encoding.der', 'trustee_vcek_new_encoding.der']) {
      const cert = snpFixture(file);
      expect(codeOf(() => verifySnpReport({ ...inputFor(trustee()), cert }))).toBe('SNP_CERT_CHAIN_INVALID');
      const ext = parseAmdExtensions(parseCertificate(cert).extensions);
      expect(ext.hwId).toBe(Buffer.from(Array.from({ length: 64 }, (_, i) => i)).toString('hex'));
      expect(ext.productName).toBe('Milan-B0');
    }
  });

  it("another chip's VCEK does not verify the report", () => {
    expect(codeOf(() => verifySnpReport({ ...inputFor(trustee()), cert: snpFixture('gosevguest_milan_vcek.der') }))).toBe('SNP_SIGNATURE_INVALID');
  });

  it('the Genoa chain for a Milan VCEK fails, and so does a root that is not trusted', () => {
    const genoa = amdChain('amd_ask_ark_genoa.pem');
    expect(codeOf(() => verifySnpReport({ ...inputFor(trustee()), chain: { ask: genoa.mid, ark: genoa.ark } }))).toBe('SNP_CERT_CHAIN_INVALID');
    expect(codeOf(() => verifySnpReport({ ...inputFor(trustee()), trustedArks: [genoa.ark] }))).toBe('SNP_CERT_CHAIN_INVALID');
    const milan = amdChain('amd_ask_ark_milan.pem');
    expect(verifySnpReport({ ...inputFor(trustee()), trustedArks: [milan.ark] }).product).toBe('Milan');
  });

  it('a VLEK report presented with a VCEK chain, or the reverse, fails', () => {
    const vlek = sample('trustee milan vlek v3');
    const { mid: ask, ark } = amdChain('amd_ask_ark_milan.pem');
    expect(codeOf(() => verifySnpReport({ ...inputFor(vlek), chain: { ask, ark } }))).toBe('SNP_CERT_CHAIN_INVALID');
  });

  it('size, version and algorithm are checked before anything else', () => {
    const s = trustee();
    expect(codeOf(() => verifySnpReport({ ...inputFor(s), report: s.report.subarray(0, 1183) }))).toBe('CVM_REPORT_MALFORMED');
    expect(codeOf(() => verifySnpReport({ ...inputFor(s), report: Buffer.concat([s.report, Buffer.alloc(1)]) }))).toBe('CVM_REPORT_MALFORMED');
    for (const version of [0, 1, 4, 6]) {
      const r = Buffer.from(s.report);
      r.writeUInt32LE(version, 0);
      expect(codeOf(() => parseSnpReport(r))).toBe('CVM_REPORT_MALFORMED');
      expect(codeOf(() => verifySnpReport({ ...inputFor(s), report: r }))).toBe('CVM_REPORT_MALFORMED');
    }
    const algo = Buffer.from(s.report);
    algo.writeUInt32LE(2, 0x34);
    expect(codeOf(() => verifySnpReport({ ...inputFor(s), report: algo }))).toBe('CVM_REPORT_MALFORMED');
  });

  it('parse rejects set reserved bytes, an unsigned report and undefined policy bits', () => {
    const s = trustee().report;
    const cases: [number, number][] = [[0x4c, 1], [0x48, 0x20], [0x48, 0x1c], [0x190, 1], [0x1eb, 1], [0x1f8, 1], [0x2a0 + 48, 1], [0x2e8 + 48, 1], [0x400, 1], [0x0b, 0x02]];
    for (const [at, v] of cases) {
      const r = Buffer.from(s);
      r[at] = (r[at] as number) | v;
      expect(codeOf(() => parseSnpReport(r))).toBe('CVM_REPORT_MALFORMED');
    }
    const noBit17 = Buffer.from(s);
    noBit17[0x0a] = 0x01;
    expect(codeOf(() => parseSnpReport(noBit17))).toBe('CVM_REPORT_MALFORMED');
  });
});
