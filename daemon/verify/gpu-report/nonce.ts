/**
 * The nonce attestd sends in each GPU's GET_MEASUREMENTS: derived from the epoch binding (see
 * verify/binding.ts), so a GPU report can only have been produced for this epoch, this
 * session key and this audit log root, and (from version 2) from the GPU's own UUID, so a
 * report one GPU made cannot be filed under another: each GPU is asked over its own nonce.
 * Domain-separated from every other use of the binding.
 *
 * The version is recorded with the reports (GpuEvidence.report_nonce_version), so a log
 * written before version 2 still re-appraises with the nonce it was made with.
 */
import { createHash } from 'node:crypto';
import { AttestdError } from '../../base/errors.js';
import { NONCE_LENGTH } from './spdm.js';

/** 1: SHA-256("attestd/gpu-nonce/v1" || binding), one nonce for every GPU (older logs only). */
export type GpuNonceVersion = 1 | 2;
/** What the daemon asks with now. */
export const GPU_NONCE_VERSION: GpuNonceVersion = 2;

const CONTEXT_V1 = Buffer.from('attestd/gpu-nonce/v1');
const CONTEXT_V2 = Buffer.from('attestd/gpu-nonce/v2');
const UUID = /^gpu-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** "GPU-" + lowercase hex, as NVML prints it; anything else is not a GPU UUID. */
export function canonicalGpuUuid(uuid: string): string {
  const lower = uuid.toLowerCase();
  if (!UUID.test(lower)) throw new AttestdError('INVALID_ARGUMENT', `"${uuid.slice(0, 64)}" is not a GPU UUID (GPU- then 8-4-4-4-12 hex digits)`);
  return `GPU-${lower.slice(4)}`;
}

/**
 * The nonce for the GPU `uuid` under `epochBinding`: version 2 (the default) is
 * SHA-256("attestd/gpu-nonce/v2" || binding || canonical UUID as ASCII); version 1 ignores
 * the UUID. SHA-256 is exactly the 32 bytes SPDM takes.
 */
export function gpuNonce(epochBinding: Uint8Array, uuid: string, version: GpuNonceVersion = GPU_NONCE_VERSION): Buffer {
  if (epochBinding.length !== 32) {
    throw new AttestdError('INVALID_ARGUMENT', `the epoch binding is ${epochBinding.length} bytes, expected a 32-byte digest`);
  }
  const h = createHash('sha256');
  if (version === 1) h.update(CONTEXT_V1).update(epochBinding);
  else h.update(CONTEXT_V2).update(epochBinding).update(canonicalGpuUuid(uuid), 'ascii');
  return h.digest().subarray(0, NONCE_LENGTH);
}

/** A recorded version number as a nonce version: 0 (absent, older logs) is 1; unknown ones are refused. */
export function gpuNonceVersion(recorded: number): GpuNonceVersion {
  if (recorded === 0 || recorded === 1) return 1;
  if (recorded === 2) return 2;
  throw new AttestdError('GPU_REPORT_MALFORMED', `GPU report nonce version ${recorded} is not one this verifier knows`);
}
