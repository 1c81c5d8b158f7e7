// Paths the recorded fixtures cannot reach (no Turin or version 5 report was published, and
// real reports cannot be re-signed): a hierarchy minted here and passed as trustedArks.
import { describe, it, expect } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { verifySnpReport, type SnpVerifyInput } from '../../daemon/verify/snp/verify.js';
import { parseSnpReport } from '../../daemon/verify/snp/report.js';
import { derOctets, mintHierarchy, mintReport, type Hierarchy, type ReportOptions } from './snp-mint.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AttestdError);
    return (err as AttestdError).code;
  }
  return 'no error';
}

const TURIN_CHIP = Buffer.from('1e550a8ee5cf9f4d', 'hex');
// Turin TCB bytes: FMC, bootloader, TEE, SNP, 3 reserved, microcode.
const TURIN_TCB = [3, 4, 0, 5, 0, 0, 0, 9];
const turin: Hierarchy = mintHierarchy('Turin', 'Turin', { fmc: 3, bootloader: 4, tee: 0, snp: 5, microcode: 9 }, TURIN_CHIP);
const MILAN_CHIP = Buffer.alloc(64, 0x42);
// Milan/Genoa TCB bytes: bootloader, TEE, 4 reserved, SNP, microcode.
const milan: Hierarchy = mintHierarchy('Milan', 'Milan-B0', { bootloader: 3, tee: 0, snp: 8, microcode: 115 }, derOctets(MILAN_CHIP));
const AT = new Date('2030-01-01T00:00:00Z');

function input(h: Hierarchy, o: ReportOptions): SnpVerifyInput {
  return { report: mintReport(o, h.vcekKey), cert: h.vcek, chain: { ask: h.ask, ark: h.ark }, at: AT, trustedArks: [h.ark] };
}
const turinReport = (over: Partial<ReportOptions> = {}): ReportOptions => ({
  version: 3, cpuid: [0x1a, 0x02, 0x00], reportedTcb: TURIN_TCB, chipId: Buffer.concat([TURIN_CHIP, Buffer.alloc(56)]), ...over,
});

describe('Turin layout, end to end with a minted hierarchy', () => {
  it('verifies a version 3 Turin report: FMC byte, 8-byte chip id', () => {
    const v = verifySnpReport(input(turin, turinReport()));
    expect(v.product).toBe('Turin');
    expect(v.report.reportedTcb).toMatchObject({ fmc: 3, bootloader: 4, tee: 0, snp: 5, microcode: 9 });
    expect(v.report.chipId).toBe('1e550a8ee5cf9f4d' + '00'.repeat(56));
  });

  it('verifies version 5 and decodes the mitigation vectors', () => {
    const v = verifySnpReport(input(turin, turinReport({ version: 5, policy: 0x2030000n })));
    expect(v.report.version).toBe(5);
    expect(v.report.launchMitVector).toBe('0000000000000000');
    expect(v.report.policy.pageSwapDisable).toBe(true);
  });

  it('the pinned AMD roots are the default: a minted root is refused without trustedArks', () => {
    expect(codeOf(() => verifySnpReport({ ...input(turin, turinReport()), trustedArks: undefined }))).toBe('SNP_CERT_CHAIN_INVALID');
  });

  it('a TCB differing in the FMC byte only is SNP_TCB_MISMATCH', () => {
    expect(codeOf(() => verifySnpReport(input(turin, turinReport({ reportedTcb: [4, 4, 0, 5, 0, 0, 0, 9] }))))).toBe('SNP_TCB_MISMATCH');
  });

  it('read in the Milan layout the same bytes would not match: the CPUID family decides', () => {
    const r = parseSnpReport(mintReport(turinReport({ cpuid: [0x19, 0x01, 0x01] }), turin.vcekKey));
    expect(r.reportedTcb).toMatchObject({ bootloader: 3, tee: 4, snp: 0, microcode: 9 });
    expect(r.reportedTcb.fmc).toBeUndefined();
    // A Milan CPUID under a Turin certificate is refused before the TCB is compared.
    expect(codeOf(() => verifySnpReport(input(turin, turinReport({ cpuid: [0x19, 0x01, 0x01] }))))).toBe('SNP_TCB_MISMATCH');
  });

  it('an 8-byte chip id must be followed by zeros, and must equal hwID', () => {
    const trailing = Buffer.concat([TURIN_CHIP, Buffer.alloc(55), Buffer.from([1])]);
    expect(codeOf(() => verifySnpReport(input(turin, turinReport({ chipId: trailing }))))).toBe('SNP_TCB_MISMATCH');
    expect(codeOf(() => verifySnpReport(input(turin, turinReport({ chipId: Buffer.alloc(64, 0x11) }))))).toBe('SNP_TCB_MISMATCH');
  });

  it('a report that says a VLEK signed it is refused with a VCEK', () => {
    expect(codeOf(() => verifySnpReport(input(turin, turinReport({ signingKey: 1 }))))).toBe('SNP_SIGNATURE_INVALID');
  });

  it('an unknown CPU model is refused rather than guessed', () => {
    expect(codeOf(() => verifySnpReport(input(turin, turinReport({ cpuid: [0x1a, 0x40, 0] }))))).toBe('SNP_TCB_MISMATCH');
  });
});

describe('Milan layout with a minted hierarchy (hwID in the wrapped encoding)', () => {
  const milanReport = (over: Partial<ReportOptions> = {}): ReportOptions => ({
    version: 2, reportedTcb: [3, 0, 0, 0, 0, 0, 8, 115], chipId: MILAN_CHIP, ...over,
  });

  it('verifies, and a version 2 report takes its layout from the chain', () => {
    const v = verifySnpReport(input(milan, milanReport()));
    expect(v.report.reportedTcb).toMatchObject({ bootloader: 3, tee: 0, snp: 8, microcode: 115 });
  });

  it('a chip id of zeros (masked by the host) does not match a VCEK', () => {
    expect(codeOf(() => verifySnpReport(input(milan, milanReport({ chipId: Buffer.alloc(64) }))))).toBe('SNP_TCB_MISMATCH');
  });

  it('a Genoa CPUID under a Milan certificate is refused', () => {
    expect(codeOf(() => verifySnpReport(input(milan, milanReport({ version: 3, cpuid: [0x19, 0x11, 0x01] }))))).toBe('SNP_TCB_MISMATCH');
  });

  it('the microcode SVN must match too', () => {
    expect(codeOf(() => verifySnpReport(input(milan, milanReport({ reportedTcb: [3, 0, 0, 0, 0, 0, 8, 116] }))))).toBe('SNP_TCB_MISMATCH');
  });

  it('a Milan certificate under a Turin root is refused', () => {
    const mixed = { ...input(milan, milanReport()), chain: { ask: turin.ask, ark: turin.ark }, trustedArks: [turin.ark] };
    expect(codeOf(() => verifySnpReport(mixed))).toBe('SNP_CERT_CHAIN_INVALID');
  });
});
