import type { GpuMeasurement } from '../verify/gpu/measurement.js';
import type { ErrorCode } from '../errors.js';
import type { SignedToken } from './token.js';

/** What the lease manager needs to know of an appraisal. */
export interface EpochState {
  epoch: number;
  pass: boolean;
  reasons: { code: string; message: string }[];
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

/** A lease as its holder sees it. */
export interface LeaseView {
  leaseId: string;
  token: SignedToken;
  expiresAtMs: number;
  rule: string;
  scopes: string[];
  gpus: string[];
}

export type LeaseEvent =
  | { kind: 'RENEWED' | 'EXPIRING'; leaseId: string; lease: LeaseView }
  | { kind: 'EXPIRED' | 'RELEASED'; leaseId: string }
  | { kind: 'REVOKED'; leaseId: string; reasonCode: ErrorCode; reason: string };
