/**
 * Appraisal of a confidential VM's verified report against the policy's cvm section.
 * Pure: the report has been verified (signature, certificate chain, collateral) by
 * verify/snp or verify/tdx before it gets here; this maps the policy's YAML onto those
 * modules' policy checks and adds what the section itself requires.
 */
import { AttestdError } from '../base/errors.js';
import { checkSnpPolicy, type SnpPolicy } from '../verify/snp/policy-checks.js';
import type { SnpReport } from '../verify/snp/types.js';
import { tdxPolicyChecks, type TdxPolicy } from '../verify/tdx/policy-checks.js';
import type { TdReportBody } from '../verify/tdx/quote.js';
import type { TcbStatus } from '../verify/tdx/json-fields.js';
import type { Reason } from '../base/reason.js';
import { formatLongDuration } from './duration.js';
import type { CvmPolicy, CvmSnpPolicy, CvmTdxPolicy } from './types.js';

/** What verification established about the CVM; undefined when the host produced no report. */
export interface CvmFacts {
  kind: 'snp' | 'tdx';
  snp?: SnpReport;
  tdx?: { body: TdReportBody; tcbStatus?: string };
}

/** The collateral's age in milliseconds, or when it was issued (then age = now - issuedAtMs). */
export type CollateralAge = number | { issuedAtMs: number };

export function snpOptions(p: CvmSnpPolicy): SnpPolicy {
  const out: SnpPolicy = { debugAllowed: p.debug === 'allowed' };
  if (p.minTcb !== undefined) out.minTcb = { ...p.minTcb };
  if (p.measurements !== undefined) out.measurements = p.measurements;
  if (p.vmpl !== undefined) out.vmpl = p.vmpl;
  if (p.minGuestSvn !== undefined) out.minGuestSvn = p.minGuestSvn;
  if (p.hostData !== undefined) out.hostData = p.hostData;
  return out;
}

export function tdxOptions(p: CvmTdxPolicy): TdxPolicy {
  const out: TdxPolicy = { allowDebug: p.debug === 'allowed' };
  if (p.mrtd !== undefined) out.mrTd = p.mrtd;
  if (p.rtmr !== undefined) out.rtmrs = { ...p.rtmr };
  if (p.acceptedTcbStatus !== undefined) out.acceptedTcbStatuses = p.acceptedTcbStatus as TcbStatus[];
  if (p.minTeeTcbSvn !== undefined) out.minTeeTcbSvn = p.minTeeTcbSvn;
  return out;
}

function collateralReasons(cvm: CvmPolicy, nowMs: number, collateral: CollateralAge | undefined): Reason[] {
  const max = cvm.maxCollateralAgeMs;
  if (max === undefined) return [];
  if (collateral === undefined) {
    return [{ code: 'COLLATERAL_STALE', message: `the collateral's age is unknown; policy allows at most ${formatLongDuration(max)}` }];
  }
  const age = typeof collateral === 'number' ? collateral : nowMs - collateral.issuedAtMs;
  if (!Number.isFinite(age) || age > max) {
    return [{ code: 'COLLATERAL_STALE', message: `the collateral is ${Number.isFinite(age) ? formatLongDuration(Math.max(0, Math.floor(age))) : 'of unknown'} old; policy allows at most ${formatLongDuration(max)}` }];
  }
  return [];
}

/**
 * Reasons the CVM evidence falls short of `cvm`. Checks, in order:
 * - a report exists when `required` (CVM_MISSING); without one and not required, nothing
 *   else is checked;
 * - its kind matches `type` unless that is `any` (CVM_TYPE_MISMATCH), and the verified facts
 *   of that kind are present (CVM_MISSING);
 * - the collateral is no older than max_collateral_age (COLLATERAL_STALE; unknown age counts
 *   as stale);
 * - SEV-SNP: checkSnpPolicy with debug, min_tcb, measurements, vmpl, min_guest_svn, host_data
 *   (SNP_* codes); debug is refused unless the snp section allows it, also with no snp section;
 * - TDX: tdxPolicyChecks with debug, mrtd, rtmr, accepted_tcb_status, min_tee_tcb_svn (TDX_*
 *   codes); a TCB status the verifier did not establish fails when accepted_tcb_status is set
 *   (TDX_TCB_STATUS_MISSING).
 */
export function appraiseCvm(cvm: CvmPolicy, facts: CvmFacts | undefined, nowMs: number, collateral?: CollateralAge): Reason[] {
  if (facts === undefined) {
    if (!cvm.required) return [];
    return [{ code: 'CVM_MISSING', message: `no confidential VM report; policy requires ${cvm.type === 'any' ? 'an SEV-SNP or TDX' : cvm.type === 'snp' ? 'an SEV-SNP' : 'a TDX'} report` }];
  }
  const reasons: Reason[] = [];
  if (cvm.type !== 'any' && facts.kind !== cvm.type) {
    reasons.push({ code: 'CVM_TYPE_MISMATCH', message: `the confidential VM is ${facts.kind === 'snp' ? 'SEV-SNP' : 'TDX'}; policy requires ${cvm.type === 'snp' ? 'SEV-SNP' : 'TDX'}` });
    return reasons;
  }
  reasons.push(...collateralReasons(cvm, nowMs, collateral));
  try {
    if (facts.kind === 'snp') {
      if (facts.snp === undefined) return [...reasons, { code: 'CVM_MISSING', message: 'the SEV-SNP report is missing from the verified facts' }];
      reasons.push(...checkSnpPolicy(facts.snp, snpOptions(cvm.snp ?? { debug: 'forbidden' })));
    } else {
      if (facts.tdx === undefined) return [...reasons, { code: 'CVM_MISSING', message: 'the TD report is missing from the verified facts' }];
      const options = tdxOptions(cvm.tdx ?? { debug: 'forbidden' });
      const status = facts.tdx.tcbStatus;
      const checks = tdxPolicyChecks(facts.tdx.body, options, status === undefined ? {} : { tcb: status as TcbStatus });
      for (const c of checks) {
        if (c.status === 'fail') reasons.push({ code: c.code ?? 'TDX_POLICY_FAILED', message: c.detail });
      }
      if (status === undefined && cvm.tdx?.acceptedTcbStatus !== undefined) {
        reasons.push({ code: 'TDX_TCB_STATUS_MISSING', message: 'the platform TCB status was not established; policy accepts only ' + cvm.tdx.acceptedTcbStatus.join(', ') });
      }
    }
  } catch (err) {
    // The loader validated every value these checks parse; getting here means a hand-built policy.
    if (!(err instanceof AttestdError)) throw err;
    reasons.push({ code: 'CVM_POLICY_INVALID', message: err.message });
  }
  return reasons;
}
