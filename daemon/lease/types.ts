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
}

/** A lease as its holder sees it. */
export interface LeaseView {
  leaseId: string;
  token: SignedToken;
  expiresAtMs: number;
  rule: string;
  scopes: string[];
}

export type LeaseEvent =
  | { kind: 'RENEWED' | 'EXPIRING'; leaseId: string; lease: LeaseView }
  | { kind: 'EXPIRED' | 'RELEASED'; leaseId: string }
  | { kind: 'REVOKED'; leaseId: string; reasonCode: ErrorCode; reason: string };
