import type { attestd } from '../../gen/proto.js';
import type { Handler } from '../handler.js';
import { leaseProto } from '../lease-proto.js';

export const acquireLease: Handler<attestd.lease.v1.AcquireLeaseRequest.$Properties> = async (conn, req, ctx) => {
  const who = await conn.identity();
  const lease = await ctx.leases.acquire(who, req.rule || undefined);
  return { acquireLease: { lease: leaseProto(lease) } };
};
