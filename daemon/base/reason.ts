/**
 * Why an appraisal or a comparison failed: a stable code that callers match on and a message
 * for people. Every verifier, appraiser and the epoch verdict speak this one shape; the module
 * that produces a code lists it in its own doc comment.
 */
export interface Reason {
  code: string;
  message: string;
  /** The uuid of the one GPU the reason is about, so only leases naming that GPU need revoking. */
  gpu?: string;
  /** The measurement index (0-based) the reason is about, when it is about one. */
  index?: number;
}
