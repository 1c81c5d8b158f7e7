/**
 * The verdict of one epoch from its recorded evidence: verify the quote against the AK and
 * the binding, notice a TPM reset or a clock going back, appraise the quoted PCRs under the
 * policy (with its update window), then the evidence beyond the quote that the policy asks
 * for: the boot event log, IMA, the confidential-VM report and the GPUs. Pure and
 * deterministic, so the auditor's verifier re-runs exactly this on the records and must reach
 * the same verdict.
 */
import { asAttestdError } from '../base/errors.js';
import { verifyQuote } from '../verify/quote.js';
import { parseTpmtPublic } from '../verify/tpm-public.js';
import type { PcrBank } from '../verify/pcr.js';
import { gpuReasonsByUuid } from '../policy/appraise-gpu.js';
import { appraisePcrsAt } from '../policy/appraise-window.js';
import type { Policy } from '../policy/types.js';
import type { Reason } from '../base/reason.js';
import type { ClockInfo } from '../verify/tpm-attest.js';
import { compareClock } from '../verify/clock.js';
import type { CollateralFile } from '../verify/tdx/collateral.js';
import type { CvmTrustRoots } from '../verify/cvm/trust-roots.js';
import { bootVerdict, cvmVerdict, gpuVerdict, imaVerdict, type ImaState, type RecordedCvm, type RecordedGpuReport } from './source-verdicts.js';
import type { GpuTrust, RecordedRim } from './gpu-reports.js';


export interface RecordedTpmEvidence {
  attest: Uint8Array;
  signature: Uint8Array;
  banks: PcrBank[];
  akPublic: Uint8Array;
}

export interface EpochVerdictInput {
  policy: Policy;
  binding: Uint8Array;
  /** Unix ms of the appraisal: update windows and collateral ages are judged at this time. */
  nowMs: number;
  /** The AK this session trusts (from its start); undefined when the session began without a TPM. */
  trustedAkPublic?: Uint8Array;
  tpm?: RecordedTpmEvidence;
  /** Why the evidence is missing, when it is. */
  collectionFailure?: Reason;
  /** The clock of the latest verified quote of this session, to see resets and a clock going back. */
  previousClock?: ClockInfo;
  boot?: { log?: Uint8Array; readError?: string };
  ima?: { state?: ImaState; newLines: Uint8Array; readError?: string };
  cvm?: { rec?: RecordedCvm; collateral: readonly CollateralFile[]; collateralIssuedAtMs?: number; roots?: CvmTrustRoots };
  gpu?: { measurement?: Uint8Array; collectError?: string; reports?: RecordedGpuReport[]; reportNonceVersion?: number; rims?: RecordedRim[] };
  /** The roots GPU reports and RIMs are judged by, the appraiser's own (never the record's). */
  gpuTrust?: GpuTrust;
}

export interface EpochVerdict {
  /** The host as a whole passed (GPU-specific failures aside: see badGpus). */
  pass: boolean;
  reasons: Reason[];
  /** The verified quote's clock, to compare the next quote with. */
  clock?: ClockInfo;
  /**
   * Set when the TPM was reset or restarted since the previous quote: the epoch chain ends
   * and no lease from before is ever renewed, even if this epoch passes.
   */
  chainEnded?: Reason;
  /** Passed only thanks to values the policy's update window allows. */
  underUpdateWindow?: boolean;
  /** GPUs that failed on their own: leases naming them are revoked, others stand. */
  badGpus?: string[];
  /** IMA state after this epoch, when its lines replayed to the quote. */
  imaNext?: ImaState;
}

export function epochVerdict(input: EpochVerdictInput): EpochVerdict {
  const { tpm, policy } = input;
  if (!tpm) {
    return { pass: false, reasons: [input.collectionFailure ?? { code: 'TPM_UNAVAILABLE', message: 'no TPM evidence' }] };
  }
  if (input.trustedAkPublic && !Buffer.from(input.trustedAkPublic).equals(Buffer.from(tpm.akPublic))) {
    return { pass: false, reasons: [{ code: 'AK_CHANGED', message: 'the TPM attestation key differs from the one this session started with' }] };
  }
  let banks: PcrBank[];
  let clock: ClockInfo;
  try {
    const ak = parseTpmtPublic(tpm.akPublic);
    const verified = verifyQuote({ attest: tpm.attest, signature: tpm.signature, pcrs: tpm.banks, ak, expectedNonce: input.binding });
    banks = verified.banks;
    clock = verified.attest.clockInfo;
  } catch (err) {
    const e = asAttestdError(err);
    return { pass: false, reasons: [{ code: e.code, message: e.message }] };
  }
  let chainEnded: Reason | undefined;
  if (input.previousClock) {
    const c = compareClock(input.previousClock, clock);
    // A clock that went back or turned unsafe within one boot is a TPM state rolled back, not a reboot.
    if (c.reason?.code === 'TPM_CLOCK_WENT_BACKWARDS' || c.reason?.code === 'TPM_CLOCK_UNSAFE') return { pass: false, reasons: [c.reason], clock };
    if (c.reason) chainEnded = c.reason;
  }
  const pcrs = appraisePcrsAt(policy, banks, input.nowMs);
  const reasons: Reason[] = [...pcrs.reasons];
  if (policy.boot) reasons.push(...bootVerdict(policy.boot, input.boot?.log, input.boot?.readError, banks));
  let imaNext: ImaState | undefined;
  if (policy.ima) {
    const v = imaVerdict(policy.ima, input.ima?.state, input.ima?.newLines ?? new Uint8Array(), input.ima?.readError, banks);
    reasons.push(...v.reasons);
    imaNext = v.next;
  }
  if (policy.cvm) {
    reasons.push(...cvmVerdict(policy.cvm, input.cvm?.rec, input.cvm?.collateral ?? [], input.binding, input.nowMs, input.cvm?.collateralIssuedAtMs, input.cvm?.roots).reasons);
  }
  if (policy.gpu) {
    const att = { reports: input.gpu?.reports ?? [], nonceVersion: input.gpu?.reportNonceVersion ?? 0, rims: input.gpu?.rims, trust: input.gpuTrust };
    reasons.push(...gpuVerdict(policy.gpu, input.gpu?.measurement, input.gpu?.collectError, att, input.binding, input.nowMs).reasons);
  }
  const { host, byGpu } = gpuReasonsByUuid(reasons);
  return {
    pass: host.length === 0, reasons, clock, chainEnded, underUpdateWindow: pcrs.underUpdateWindow && host.length === 0,
    badGpus: [...byGpu.keys()], imaNext,
  };
}
