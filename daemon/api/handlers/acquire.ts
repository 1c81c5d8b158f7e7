import type { attestd } from '../../gen/proto.js';
import type { Handler } from '../handler.js';
import { leaseProto } from '../lease-proto.js';
import { AttestdError } from '../../base/errors.js';

export const acquireLease: Handler<attestd.lease.v1.AcquireLeaseRequest.$Properties> = async (conn, req, ctx) => {
  const who = await conn.identity();
  const wanted = req.gpus ?? [];
  if (wanted.length > 64 || wanted.some((g) => typeof g !== 'string' || g.length > 64)) {
    throw new AttestdError('MALFORMED_REQUEST', 'at most 64 GPU names of at most 64 characters');
  }
  const lease = await ctx.leases.acquire(who, req.rule || undefined, wanted);
  return { acquireLease: { lease: leaseProto(lease) } };
};
