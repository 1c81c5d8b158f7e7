import type { attestd } from '../gen/proto.js';
import { AttestdError } from '../base/errors.js';
import type { LeaseView } from '../lease/types.js';

export function leaseProto(l: LeaseView): attestd.lease.v1.Lease.$Properties {
  return { leaseId: l.leaseId, token: l.token, expiresAtMs: l.expiresAtMs, rule: l.rule, scopes: l.scopes, gpus: l.gpus };
}

/** Lease ids are 32 lowercase hex characters; anything else is refused before any lookup. */
export function requireLeaseId(id: string | null | undefined): string {
  if (typeof id !== 'string' || id.length !== 32 || !/^[0-9a-f]{32}$/.test(id)) {
    throw new AttestdError('LEASE_NOT_FOUND', 'no such lease');
  }
  return id;
}
