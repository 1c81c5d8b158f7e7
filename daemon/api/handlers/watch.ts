import { attestd } from '../../gen/proto.js';
import { AttestdError } from '../../base/errors.js';
import type { Handler } from '../handler.js';
import { leaseProto, requireLeaseId } from '../lease-proto.js';
import type { LeaseEvent } from '../../lease/types.js';

const Kind = attestd.lease.v1.LeaseEvent.Kind;
/** Watches one connection may hold; each costs a closure on a lease. */
export const MAX_WATCHES_PER_CONNECTION = 64;

/** Registers a watch; pushes every later event for the lease under the same request id. */
export const watchLease: Handler<attestd.lease.v1.WatchLeaseRequest.$Properties> = async (conn, req, ctx, requestId) => {
  const id = requireLeaseId(req.leaseId);
  if (conn.watches.size >= MAX_WATCHES_PER_CONNECTION || conn.watches.has(requestId)) {
    throw new AttestdError('TOO_MANY_REQUESTS', 'too many watches');
  }
  const who = await conn.identity();
  const { lease, cancel } = ctx.leases.watch(who, id, (event) => {
    conn.send({ id: requestId, leaseEvent: eventProto(event) });
    if (event.kind === 'REVOKED' || event.kind === 'EXPIRED' || event.kind === 'RELEASED') conn.watches.delete(requestId);
  });
  conn.watches.set(requestId, cancel);
  return { leaseEvent: { kind: Kind.ACTIVE, leaseId: id, lease: leaseProto(lease) } };
};

function eventProto(e: LeaseEvent): attestd.lease.v1.LeaseEvent.$Properties {
  switch (e.kind) {
    case 'RENEWED':
    case 'EXPIRING':
      return { kind: Kind[e.kind], leaseId: e.leaseId, lease: leaseProto(e.lease) };
    case 'REVOKED':
      return { kind: Kind.REVOKED, leaseId: e.leaseId, reasonCode: e.reasonCode, reason: e.reason.slice(0, 256) };
    default:
      return { kind: Kind[e.kind], leaseId: e.leaseId };
  }
}
