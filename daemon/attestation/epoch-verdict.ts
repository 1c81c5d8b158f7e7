/**
 * The verdict of one epoch from its recorded evidence: verify the quote against the AK and
 * the binding, then appraise the quoted PCRs under the policy. Pure and deterministic, so
 * the auditor's verifier re-runs exactly this on the records and must reach the same verdict.
 */
import { asAttestdError } from '../errors.js';
import { verifyQuote } from '../verify/quote.js';
import { parseTpmtPublic } from '../verify/tpm-public.js';
import type { PcrBank } from '../verify/pcr.js';
import { appraisePcrs } from '../policy/appraise.js';
import type { Policy } from '../policy/types.js';
import type { ClockInfo } from '../verify/tpm-attest.js';
import { compareClock } from '../verify/clock.js';

export interface Reason {
  code: string;
  message: string;
}

export interface RecordedTpmEvidence {
  attest: Uint8Array;
  signature: Uint8Array;
  banks: PcrBank[];
  akPublic: Uint8Array;
}

export interface EpochVerdictInput {
  policy: Policy;
  binding: Uint8Array;
  /** The AK this session trusts (from its start); undefined when the session began without a TPM. */
  trustedAkPublic?: Uint8Array;
  tpm?: RecordedTpmEvidence;
  /** Why the evidence is missing, when it is. */
  collectionFailure?: Reason;
  /** The clock of the latest verified quote of this session, to see resets and a clock going back. */
  previousClock?: ClockInfo;
}

export interface EpochVerdict {
  pass: boolean;
  reasons: Reason[];
  /** The verified quote's clock, to compare the next quote with. */
  clock?: ClockInfo;
  /**
   * Set when the TPM was reset or restarted since the previous quote: the epoch chain ends
   * and no lease from before is ever renewed, even if this epoch passes.
   */
  chainEnded?: Reason;
}

export function epochVerdict(input: EpochVerdictInput): EpochVerdict {
  const { tpm } = input;
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
    if (c.reason?.code === 'TPM_CLOCK_WENT_BACKWARDS') return { pass: false, reasons: [c.reason], clock };
    if (c.reason) chainEnded = c.reason;
  }
  return { ...appraisePcrs(input.policy, banks), clock, chainEnded };
}
