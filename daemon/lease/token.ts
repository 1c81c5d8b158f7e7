/**
 * Lease tokens: a serialized LeaseToken signed with the session key. The signature covers a
 * context string before the token bytes so a token signature can never be replayed as the
 * signature of another kind of attestd message (epoch results, checkpoints).
 */
import { attestd } from '../gen/proto.js';
import { TOKEN_CONTEXT } from '../verify/lease-token.js';
import type { Signer } from '../base/signer.js';


export type LeaseClaims = attestd.lease.v1.LeaseToken.$Properties;
export interface SignedToken {
  token: Uint8Array;
  signature: Uint8Array;
}

/**
 * Live leases keep their token for their whole life, so token and signature share one
 * exact-size allocation: the encoder's output is a slice of a shared 8 KiB slab, and keeping
 * it would keep the whole slab (and every other record encoded into it) alive.
 */
export function signToken(claims: LeaseClaims, signer: Signer): SignedToken {
  const encoded = attestd.lease.v1.LeaseToken.encode(claims).finish();
  const signature = signer.sign(Buffer.concat([TOKEN_CONTEXT, encoded]));
  const both = new Uint8Array(encoded.length + signature.length);
  both.set(encoded);
  both.set(signature, encoded.length);
  return { token: both.subarray(0, encoded.length), signature: both.subarray(encoded.length) };
}
