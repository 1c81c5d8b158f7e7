/**
 * A signing key as the rest of the daemon sees it: sign and show the public key, nothing
 * else. The session key (daemon/native.ts) has this shape, so its private half never becomes
 * a JS value; tests pass a node:crypto key of the same shape.
 */
export interface Signer {
  /** Ed25519 signature (64 bytes) over `data`. */
  sign(data: Uint8Array): Buffer;
  /** The raw 32-byte Ed25519 public key. */
  publicKey(): Buffer;
}
