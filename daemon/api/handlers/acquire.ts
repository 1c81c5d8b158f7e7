import type { attestd } from '../../gen/proto.js';
import type { Handler } from '../handler.js';
import { leaseProto } from '../lease-proto.js';
import { AttestdError } from '../../base/errors.js';
import { resolveIntent } from '../intent-resolver.js';
import { MAX_AUTHORIZATION_BYTES, MAX_AUTHORIZATIONS } from '../../verify/authorization/verify.js';

export const acquireLease: Handler<attestd.lease.v1.AcquireLeaseRequest.$Properties> = async (conn, req, ctx) => {
  const who = await conn.identity();
  const wanted = req.gpus ?? [];
  if (wanted.length > 64 || wanted.some((g) => typeof g !== 'string' || g.length > 64)) {
    throw new AttestdError('MALFORMED_REQUEST', 'at most 64 GPU names of at most 64 characters');
  }
  const intent = req.intent;
  // Resolved inside the manager's acquire, so a refusal (an unreadable artifact) is recorded like any other.
  const resolver = intent ? () => resolveIntent(intent, who, conn.peer) : undefined;
  const authorizations = req.authorizations ?? [];
  if (authorizations.length > MAX_AUTHORIZATIONS || authorizations.some((a) => typeof a !== 'string' || a.length > MAX_AUTHORIZATION_BYTES)) {
    throw new AttestdError('MALFORMED_REQUEST', `at most ${MAX_AUTHORIZATIONS} authorizations of at most ${MAX_AUTHORIZATION_BYTES} bytes`);
  }
  const lease = await ctx.leases.acquire(who, req.rule || undefined, wanted, resolver, authorizations);
  return { acquireLease: { lease: leaseProto(lease) } };
};
