import type { attestd } from '../../gen/proto.js';
import { AttestdError } from '../../base/errors.js';
import type { Handler } from '../handler.js';
import { requireLeaseId } from '../lease-proto.js';

/**
 * An attestation result for a live lease (verify/ear/), for its holder or a process of the
 * holder's uid to hand to a relying party. The relying party's nonce, when given, is 8 to 64
 * bytes; it is what the fresh quote and the EAR answer.
 */
export const getLeaseResult: Handler<attestd.lease.v1.GetLeaseResultRequest.$Properties> = async (conn, req, ctx) => {
  const id = requireLeaseId(req.leaseId);
  const nonce = req.nonce && req.nonce.length > 0 ? Buffer.from(req.nonce) : undefined;
  if (nonce && (nonce.length < 8 || nonce.length > 64)) throw new AttestdError('MALFORMED_REQUEST', 'nonce: 8 to 64 bytes');
  const who = await conn.identity();
  const lease = ctx.leases.describe(who, id);
  return { getLeaseResult: { bundle: await ctx.results.make(lease, nonce) } };
};
