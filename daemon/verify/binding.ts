/**
 * The epoch binding (ARCHITECTURE.md, trust chain step 3): the digest sent to the TPM as the
 * quote's qualifying data, so the TPM vouches that this session key speaks for this platform
 * state, at this epoch, with the audit log at this root.
 */
import { createHash } from 'node:crypto';

const CONTEXT = Buffer.from('attestd/epoch/v1');

export interface BindingInput {
  sessionPublicKey: Uint8Array;
  epoch: number;
  gpuMeasurementSha256: Uint8Array;
  logRoot: Uint8Array;
}

export function bindingDigest(b: BindingInput): Buffer {
  if (!Number.isSafeInteger(b.epoch) || b.epoch < 0) throw new RangeError('epoch out of range');
  const epoch = Buffer.alloc(8);
  epoch.writeBigUInt64BE(BigInt(b.epoch));
  return createHash('sha256').update(CONTEXT).update(b.sessionPublicKey).update(epoch)
    .update(b.gpuMeasurementSha256).update(b.logRoot).digest();
}

/** SHA-256 of the empty GPU measurement: what hosts without GPU evidence bind. */
export const EMPTY_GPU_MEASUREMENT_SHA256 = createHash('sha256').digest();
