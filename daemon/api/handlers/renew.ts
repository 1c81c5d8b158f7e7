import type { attestd } from '../../gen/proto.js';
import type { Handler } from '../handler.js';
import { leaseProto } from '../lease-proto.js';
import { requireLeaseId } from '../lease-proto.js';

export const renewLease: Handler<attestd.lease.v1.RenewLeaseRequest.$Properties> = async (conn, req, ctx) => {
  const id = requireLeaseId(req.leaseId);
  const who = await conn.identity();
  const lease = await ctx.leases.renew(who, id);
  return { renewLease: { lease: leaseProto(lease) } };
};
