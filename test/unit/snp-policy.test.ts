import { describe, it, expect } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { checkSnpPolicy } from '../../daemon/verify/snp/policy-checks.js';
import { verifySnpReport } from '../../daemon/verify/snp/verify.js';
import type { SnpReport } from '../../daemon/verify/snp/types.js';
import { inputFor, validSamples } from './snp-helpers.js';

function verified(name: string): SnpReport {
  const s = validSamples().find((x) => x.name === name);
  if (!s) throw new Error(name);
  return verifySnpReport(inputFor(s)).report;
}
// go-sev-guest: debug allowed, report_data 01..05, TCB bl=2 tee=0 snp=5 ucode=68, VMPL 0.
const gosev = verified('gosevguest milan v2');
// trustee: policy 0x3001f (debug off), TCB bl=3 snp=8 ucode=115, guest SVN 4.
const trustee = verified('trustee milan vcek v2');
const codes = (report: SnpReport, policy: Parameters<typeof checkSnpPolicy>[1]): string[] => checkSnpPolicy(report, policy).map((r) => r.code);

describe('checkSnpPolicy', () => {
  it('an empty policy has nothing to say', () => {
    expect(checkSnpPolicy(gosev, {})).toEqual([]);
  });

  it('debugAllowed: false refuses a debuggable guest only', () => {
    expect(codes(gosev, { debugAllowed: false })).toEqual(['SNP_DEBUG_ALLOWED']);
    expect(codes(trustee, { debugAllowed: false })).toEqual([]);
    expect(codes(gosev, { debugAllowed: true })).toEqual([]);
  });

  it('reportData must equal the binding exactly (CVM_BINDING_MISMATCH)', () => {
    const want = Buffer.concat([Buffer.from([1, 2, 3, 4, 5]), Buffer.alloc(59)]);
    expect(codes(gosev, { reportData: want })).toEqual([]);
    expect(codes(gosev, { reportData: want.toString('hex').toUpperCase() })).toEqual([]);
    const other = Buffer.from(want);
    other[63] = 1;
    expect(codes(gosev, { reportData: other })).toEqual(['CVM_BINDING_MISMATCH']);
  });

  it('minTcb compares each SVN of REPORTED_TCB', () => {
    expect(codes(trustee, { minTcb: { bootloader: 3, tee: 0, snp: 8, microcode: 115 } })).toEqual([]);
    expect(codes(gosev, { minTcb: { bootloader: 3, tee: 0, snp: 8, microcode: 115 } })).toEqual(['SNP_TCB_TOO_LOW', 'SNP_TCB_TOO_LOW', 'SNP_TCB_TOO_LOW']);
    expect(codes(trustee, { minTcb: { bootloader: 0, tee: 0, snp: 0, microcode: 0, fmc: 9 } })).toEqual([]);
  });

  it('measurement must be one of the allowed', () => {
    expect(codes(trustee, { measurements: ['00'.repeat(48), trustee.measurement] })).toEqual([]);
    expect(codes(trustee, { measurements: [gosev.measurement] })).toEqual(['SNP_MEASUREMENT_MISMATCH']);
  });

  it('host data, VMPL, guest SVN and policy bits', () => {
    expect(codes(trustee, { hostData: trustee.hostData, vmpl: 0, minGuestSvn: 4 })).toEqual([]);
    expect(codes(trustee, { hostData: '11'.repeat(32), vmpl: 1, minGuestSvn: 5 })).toEqual(['SNP_HOST_DATA_MISMATCH', 'SNP_VMPL_MISMATCH', 'SNP_GUEST_SVN_TOO_LOW']);
    expect(codes(trustee, { policyBitsRequired: ['smt'], policyBitsForbidden: ['debug', 'migrateMa'] })).toEqual([]);
    expect(codes(gosev, { policyBitsRequired: ['singleSocket'], policyBitsForbidden: ['debug'] })).toEqual(['SNP_POLICY_BIT_MISSING', 'SNP_POLICY_BIT_FORBIDDEN']);
  });

  it('a malformed policy is INVALID_ARGUMENT, not a silent pass', () => {
    for (const bad of [{ measurements: ['abc'] }, { hostData: 'zz'.repeat(32) }, { reportData: new Uint8Array(32) }, { policyBitsRequired: ['nope' as 'smt'] }]) {
      expect(() => checkSnpPolicy(trustee, bad)).toThrow(AttestdError);
    }
  });
});
