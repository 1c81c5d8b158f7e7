import type { ErrorCode } from '../base/errors.js';
import type { SignedToken } from './token.js';

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
