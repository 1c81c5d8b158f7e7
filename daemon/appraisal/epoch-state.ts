import type { GpuMeasurement } from '../verify/gpu/measurement-types.js';
import type { Reason } from '../base/reason.js';

/**
 * One epoch's outcome as the rest of the daemon acts on it: the lease manager grants and
 * revokes by it, status reports it, the metrics count it.
 */
export interface EpochState {
  epoch: number;
  pass: boolean;
  reasons: Reason[];
  appraisedAtMs: number;
  /** Leases never outlive this; 0 for a failing epoch. */
  validUntilMs: number;
  policyDigest: Buffer;
  /** GPUs that failed on their own this epoch: leases naming them are revoked. */
  badGpus?: string[];
  /** Passed only thanks to the policy's update window: grants under it are marked. */
  underUpdateWindow?: boolean;
  /** The GPU measurement of this epoch, to resolve rules' GPU scopes. */
  gpu?: GpuMeasurement;
}
