/**
 * Expectations about the guest, checked against a report that verifySnpReport has already
 * verified. Pure and deterministic: the same reasons in the same order for the same input,
 * so an auditor re-running it reaches the same verdict. An empty list means every stated
 * expectation holds; an expectation left out is not checked.
 */
import { timingSafeEqual } from 'node:crypto';
import { AttestdError } from '../../base/errors.js';
import type { GuestPolicyFlag, SnpReport } from './types.js';
import type { Reason } from '../../base/reason.js';

export interface SnpMinTcb {
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  /** Turin only; ignored for reports in the Milan/Genoa layout, which have no FMC. */
  fmc?: number;
}

export interface SnpPolicy {
  /** false: refuse a guest whose policy allows debugging (the host can then read its memory). */
  debugAllowed?: boolean;
  /** Every SVN of REPORTED_TCB at least this. */
  minTcb?: SnpMinTcb;
  /** MEASUREMENT is one of these (hex, 48 bytes). */
  measurements?: readonly string[];
  /** HOST_DATA equals this (hex, 32 bytes). */
  hostData?: string;
  /** REPORT_DATA equals this: the 64-byte binding (bytes or hex). */
  reportData?: Uint8Array | string;
  /** The report was requested at exactly this VMPL. */
  vmpl?: number;
  policyBitsRequired?: readonly GuestPolicyFlag[];
  policyBitsForbidden?: readonly GuestPolicyFlag[];
  minGuestSvn?: number;
}

/** Stable reason codes, besides CVM_BINDING_MISMATCH for REPORT_DATA. */
export type SnpReasonCode =
  | 'SNP_DEBUG_ALLOWED'
  | 'SNP_TCB_TOO_LOW'
  | 'SNP_MEASUREMENT_MISMATCH'
  | 'SNP_HOST_DATA_MISMATCH'
  | 'CVM_BINDING_MISMATCH'
  | 'SNP_VMPL_MISMATCH'
  | 'SNP_POLICY_BIT_MISSING'
  | 'SNP_POLICY_BIT_FORBIDDEN'
  | 'SNP_GUEST_SVN_TOO_LOW';

const FLAGS: ReadonlySet<string> = new Set<GuestPolicyFlag>([
  'smt', 'migrateMa', 'debug', 'singleSocket', 'cxl', 'memAes256Xts', 'raplDisable', 'ciphertextHiding', 'pageSwapDisable',
]);

function expectedHex(value: string, bytes: number, what: string): string {
  const v = value.toLowerCase();
  if (v.length !== bytes * 2 || !/^[0-9a-f]*$/.test(v)) {
    throw new AttestdError('INVALID_ARGUMENT', `policy ${what} must be ${bytes} bytes of hex`);
  }
  return v;
}

function sameBytes(aHex: string, bHex: string): boolean {
  const a = Buffer.from(aHex, 'hex');
  const b = Buffer.from(bHex, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

function flagList(flags: readonly GuestPolicyFlag[] | undefined, what: string): readonly GuestPolicyFlag[] {
  for (const f of flags ?? []) if (!FLAGS.has(f)) throw new AttestdError('INVALID_ARGUMENT', `policy ${what}: unknown guest policy bit "${String(f)}"`);
  return flags ?? [];
}

function tcbReasons(report: SnpReport, min: SnpMinTcb): Reason[] {
  const tcb = report.reportedTcb;
  const out: Reason[] = [];
  const fields = ['bootloader', 'tee', 'snp', 'microcode'] as const;
  for (const f of fields) {
    if (tcb[f] < min[f]) out.push({ code: 'SNP_TCB_TOO_LOW', message: `${f} SVN ${tcb[f]} is below the minimum ${min[f]}` });
  }
  if (min.fmc !== undefined && tcb.fmc !== undefined && tcb.fmc < min.fmc) {
    out.push({ code: 'SNP_TCB_TOO_LOW', message: `FMC SVN ${tcb.fmc} is below the minimum ${min.fmc}` });
  }
  return out;
}

/**
 * Checks a verified report against the stated expectations, in a fixed order: debug, TCB,
 * measurement, host data, report data, VMPL, policy bits, guest SVN. Throws
 * INVALID_ARGUMENT only when the policy itself is malformed.
 */
export function checkSnpPolicy(report: SnpReport, policy: SnpPolicy): Reason[] {
  const reasons: Reason[] = [];
  const add = (code: SnpReasonCode, message: string): void => {
    reasons.push({ code, message });
  };
  const required = flagList(policy.policyBitsRequired, 'policyBitsRequired');
  const forbidden = flagList(policy.policyBitsForbidden, 'policyBitsForbidden');

  if (policy.debugAllowed === false && report.policy.debug) add('SNP_DEBUG_ALLOWED', 'the guest policy allows debugging');
  if (policy.minTcb) reasons.push(...tcbReasons(report, policy.minTcb));
  if (policy.measurements) {
    const allowed = policy.measurements.map((m) => expectedHex(m, 48, 'measurement'));
    if (!allowed.some((m) => sameBytes(m, report.measurement))) {
      add('SNP_MEASUREMENT_MISMATCH', `measurement ${report.measurement} is not among the ${allowed.length} allowed`);
    }
  }
  if (policy.hostData !== undefined && !sameBytes(expectedHex(policy.hostData, 32, 'hostData'), report.hostData)) {
    add('SNP_HOST_DATA_MISMATCH', 'HOST_DATA differs from the expected value');
  }
  if (policy.reportData !== undefined) {
    const want = typeof policy.reportData === 'string' ? policy.reportData : Buffer.from(policy.reportData).toString('hex');
    if (!sameBytes(expectedHex(want, 64, 'reportData'), report.reportData)) {
      add('CVM_BINDING_MISMATCH', 'REPORT_DATA does not carry the expected binding');
    }
  }
  if (policy.vmpl !== undefined && report.vmpl !== policy.vmpl) add('SNP_VMPL_MISMATCH', `the report is for VMPL ${report.vmpl}, expected ${policy.vmpl}`);
  for (const f of required) if (!report.policy[f]) add('SNP_POLICY_BIT_MISSING', `guest policy bit ${f} is required but clear`);
  for (const f of forbidden) if (report.policy[f]) add('SNP_POLICY_BIT_FORBIDDEN', `guest policy bit ${f} is forbidden but set`);
  if (policy.minGuestSvn !== undefined && report.guestSvn < policy.minGuestSvn) {
    add('SNP_GUEST_SVN_TOO_LOW', `guest SVN ${report.guestSvn} is below the minimum ${policy.minGuestSvn}`);
  }
  return reasons;
}
