/**
 * Offline check of a lease token. Pure: shared by the daemon's VerifyLease call and the
 * auditor's verifier.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { attestd } from '../gen/proto.js';

/** Signed before the token bytes, so a token signature cannot pass as any other attestd signature. */
export const TOKEN_CONTEXT = Buffer.from('attestd/lease-token/v1');

export type VerifiedClaims = attestd.lease.v1.LeaseToken;

/** An Ed25519 public KeyObject from its 32 raw bytes. */
export function ed25519PublicKey(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new RangeError('Ed25519 public key must be 32 bytes');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

/**
 * Checks, in order: the signature is 64 bytes; it verifies with `key` over the token context
 * and the token bytes; the bytes decode as a LeaseToken of version 1, with a well-formed
 * intent digest and lineage, that names `key` as its signer. Returns the claims only when
 * every check passes, otherwise undefined. Expiry is the caller's question: the claims carry
 * expires_at_ms.
 */
export function verifyLeaseToken(token: Uint8Array, signature: Uint8Array, key: KeyObject, keyRaw: Uint8Array): VerifiedClaims | undefined {
  if (signature.length !== 64 || token.length > 16 * 1024) return undefined;
  if (!verify(null, Buffer.concat([TOKEN_CONTEXT, token]), key, signature)) return undefined;
  let claims: VerifiedClaims;
  try {
    claims = attestd.lease.v1.LeaseToken.decode(token);
  } catch {
    return undefined;
  }
  if (claims.version !== 1) return undefined;
  // An intent digest is a SHA-256 or absent.
  if (claims.intentSha256.length !== 0 && claims.intentSha256.length !== 32) return undefined;
  if (!lineageWellFormed(claims)) return undefined;
  if (!Buffer.from(claims.sessionPublicKey).equals(Buffer.from(keyRaw))) return undefined;
  return claims;
}

const LEASE_ID = /^[0-9a-f]{32}$/;

/**
 * A token's lineage is all or nothing: an acquired lease has no parent, no root and depth 0; a
 * derived one a parent and a root (lease ids) and a depth of at least 1, and its parent is its
 * root exactly at depth 1.
 */
function lineageWellFormed(c: VerifiedClaims): boolean {
  if (c.depth === 0) return c.parentLeaseId === '' && c.rootLeaseId === '';
  if (!LEASE_ID.test(c.parentLeaseId) || !LEASE_ID.test(c.rootLeaseId) || c.parentLeaseId === c.leaseId) return false;
  return (c.depth === 1) === (c.parentLeaseId === c.rootLeaseId);
}

