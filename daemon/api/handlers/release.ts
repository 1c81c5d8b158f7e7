import type { attestd } from '../../gen/proto.js';
import type { Handler } from '../handler.js';
import { requireLeaseId } from '../lease-proto.js';

export const releaseLease: Handler<attestd.lease.v1.ReleaseLeaseRequest.$Properties> = async (conn, req, ctx) => {
  const id = requireLeaseId(req.leaseId);
  const who = await conn.identity();
  await ctx.leases.release(who, id);
  return { releaseLease: {} };
};
