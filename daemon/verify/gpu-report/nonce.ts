/**
 * The nonce attestd sends in GET_MEASUREMENTS: derived from the epoch binding (see
 * verify/binding.ts), so a GPU report can only have been produced for this epoch, this
 * session key and this audit log root. Domain-separated from every other use of the binding.
 */
import { createHash } from 'node:crypto';
import { AttestdError } from '../../base/errors.js';
import { NONCE_LENGTH } from './spdm.js';

const CONTEXT = Buffer.from('attestd/gpu-nonce/v1');

/** First 32 bytes of SHA-256("attestd/gpu-nonce/v1" || binding); SHA-256 is exactly that long. */
export function gpuNonce(epochBinding: Uint8Array): Buffer {
  if (epochBinding.length !== 32) {
    throw new AttestdError('INVALID_ARGUMENT', `the epoch binding is ${epochBinding.length} bytes, expected a 32-byte digest`);
  }
  return createHash('sha256').update(CONTEXT).update(epochBinding).digest().subarray(0, NONCE_LENGTH);
}
