import type { attestd } from '../../gen/proto.js';
import { AttestdError } from '../../base/errors.js';
import type { Handler } from '../handler.js';

export const verifyLease: Handler<attestd.lease.v1.VerifyLeaseRequest.$Properties> = async (_conn, req, ctx) => {
  const token = req.token;
  if (!token?.token || !token.signature) throw new AttestdError('MALFORMED_REQUEST', 'token required');
  const claims = ctx.verifyToken(token.token, token.signature);
  return { verifyLease: { signatureValid: !!claims, live: !!claims && ctx.leases.isLive(claims.leaseId, token.token), claims: claims ?? null } };
};
