/**
 * The TPM's key derivation functions (TPM 2.0 Part 1, 11.4.10): KDFa, the SP 800-108 counter
 * mode KDF with HMAC, and KDFe, the SP 800-56A single-step KDF with a hash. Labels are
 * null-terminated strings and the terminating zero is part of the input, as the TPM does it.
 */
import { createHash, createHmac } from 'node:crypto';
import { AttestdError } from '../../base/errors.js';
import type { HashAlg } from '../tpm-alg.js';

const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};

const label = (text: string): Buffer => Buffer.from(`${text}\0`, 'latin1');

function bounded(bits: number): number {
  if (!Number.isInteger(bits) || bits <= 0 || bits > 8192) throw new AttestdError('INVALID_ARGUMENT', `a KDF output of ${bits} bits`);
  return Math.ceil(bits / 8);
}

/** KDFa(hash, key, label, contextU, contextV, bits). */
export function kdfa(hash: HashAlg, key: Uint8Array, use: string, contextU: Uint8Array, contextV: Uint8Array, bits: number): Buffer {
  const bytes = bounded(bits);
  const parts: Buffer[] = [];
  for (let i = 1, got = 0; got < bytes; i++) {
    const block = createHmac(hash, key).update(u32(i)).update(label(use)).update(contextU).update(contextV).update(u32(bits)).digest();
    parts.push(block);
    got += block.length;
  }
  return Buffer.concat(parts).subarray(0, bytes);
}

/** KDFe(hash, Z, use, partyUInfo, partyVInfo, bits). */
export function kdfe(hash: HashAlg, z: Uint8Array, use: string, partyU: Uint8Array, partyV: Uint8Array, bits: number): Buffer {
  const bytes = bounded(bits);
  const parts: Buffer[] = [];
  for (let i = 1, got = 0; got < bytes; i++) {
    const block = createHash(hash).update(u32(i)).update(z).update(label(use)).update(partyU).update(partyV).digest();
    parts.push(block);
    got += block.length;
  }
  return Buffer.concat(parts).subarray(0, bytes);
}
