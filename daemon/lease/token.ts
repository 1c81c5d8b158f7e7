/**
 * Lease tokens: a serialized LeaseToken signed with the session key. The signature covers a
 * context string before the token bytes so a token signature can never be replayed as the
 * signature of another kind of attestd message (epoch results, checkpoints).
 */
import { attestd } from '../gen/proto.js';
import { TOKEN_CONTEXT } from '../verify/lease-token.js';

export interface Signer {
  sign(data: Uint8Array): Buffer;
  publicKey(): Buffer;
}

export type LeaseClaims = attestd.lease.v1.LeaseToken.$Properties;
export interface SignedToken {
  token: Uint8Array;
  signature: Uint8Array;
}

export function signToken(claims: LeaseClaims, signer: Signer): SignedToken {
  const token = attestd.lease.v1.LeaseToken.encode(claims).finish();
  return { token, signature: signer.sign(Buffer.concat([TOKEN_CONTEXT, token])) };
}
