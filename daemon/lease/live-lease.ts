/**
 * A lease while the manager holds it: what its token says, and the bookkeeping around it
 * (whether the grant is durable yet, revocation, the expiry warning, its watchers).
 */
import { randomBytes } from 'node:crypto';
import type { ErrorCode } from '../base/errors.js';
import type { WorkloadIdentity } from '../base/workload-identity.js';
import type { SignedToken } from './token.js';
import type { LeaseEvent, LeaseView } from './types.js';
import type { Terms } from './checks.js';
import type { RecordedIntent } from './intent.js';
import type { LineageLink } from './lineage.js';
import type { LeaseAuthorization } from './authorization.js';

export interface LiveLease {
  id: string;
  rule: string;
  scopes: string[];
  who: WorkloadIdentity;
  ttlMs: number;
  /** GPU UUIDs the lease covers. */
  gpus: string[];
  epoch: number;
  issuedAtMs: number;
  expiresAtMs: number;
  renewal: number;
  token: SignedToken;
  /** The execution intent it was granted with, kept by every renewal. */
  intent?: RecordedIntent;
  /** For a derived lease: its parent, root and depth (lineage.ts); absent for an acquired one. */
  lineage?: LineageLink;
  /** The signed authorizations it was granted with, kept by every renewal. */
  authorization?: LeaseAuthorization;
  /** false until the grant is durable; revocation still sees it. */
  granted: boolean;
  revoked?: { code: ErrorCode; reason: string };
  expiringSent: boolean;
  watchers: Set<(e: LeaseEvent) => void>;
}

/**
 * A new lease under `terms`, not yet signed nor granted: it lasts the rule's TTL, and never
 * beyond the epoch's validity.
 */
export function newLease(terms: Terms, who: WorkloadIdentity, gpus: string[], nowMs: number): LiveLease {
  const { rule, epoch } = terms;
  return {
    id: randomBytes(16).toString('hex'),
    rule: rule.name,
    scopes: rule.scopes,
    who,
    ttlMs: rule.ttlMs,
    epoch: epoch.epoch,
    issuedAtMs: nowMs,
    expiresAtMs: Math.min(nowMs + rule.ttlMs, epoch.validUntilMs),
    renewal: 0,
    gpus,
    token: { token: new Uint8Array(), signature: new Uint8Array() },
    granted: false,
    expiringSent: false,
    watchers: new Set(),
  };
}

/** A lease as its holder sees it. */
export function leaseView(lease: LiveLease): LeaseView {
  return { leaseId: lease.id, token: lease.token, expiresAtMs: lease.expiresAtMs, rule: lease.rule, scopes: lease.scopes, gpus: lease.gpus };
}
