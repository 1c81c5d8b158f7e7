/**
 * TSS2_RC values (tss2_common.h) sorted into the AttestdError codes callers act on:
 * the TPM said no (TPM_COMMAND_FAILED), the TPM could not be reached or the link broke
 * (TPM_UNAVAILABLE; the caller reconnects), or the software stack refused our own call
 * (INTERNAL, a bug here). The numeric code and the decoded text stay in the message.
 */
import { AttestdError, type ErrorCode } from '../../base/errors.js';

const LAYER_SHIFT = 16;
const LAYER_TPM = 0;
const LAYER_TCTI = 10;
const LAYER_RESMGR = 11;
const LAYER_RESMGR_TPM = 12;

/** Base codes (low 16 bits of a non-TPM layer) that mean the link to the TPM failed. */
const BASE_LINK_FAILURES = new Set([
  8, // NO_CONNECTION
  9, // TRY_AGAIN: a timeout
  10, // IO_ERROR
  17, // MALFORMED_RESPONSE: a torn or garbled response
  19, // INSUFFICIENT_RESPONSE
  20, // INCOMPATIBLE_TCTI
  22, // BAD_TCTI_STRUCTURE
  49, // NO_TPM
]);

/** TPM2_RC_INITIALIZE: TPM2_Startup was already done (by firmware or swtpm's startup-clear). */
export const TPM2_RC_INITIALIZE = 0x100;

/**
 * TPM warnings that mean "not now" rather than "no": TPM_RC_RETRY, TPM_RC_YIELDED,
 * TPM_RC_TESTING (TPM 2.0 Part 2, 6.6.3). The command may simply be sent again.
 */
const TPM_RC_TRANSIENT = new Set([0x922, 0x908, 0x90a]);

export function isTransientTpmWarning(rc: number): boolean {
  return TPM_RC_TRANSIENT.has(rc >>> 0);
}

export function layerOf(rc: number): number {
  return (rc >>> LAYER_SHIFT) & 0xff;
}

export function classifyRc(rc: number): ErrorCode {
  const layer = layerOf(rc);
  if (layer === LAYER_TPM || layer === LAYER_RESMGR_TPM) return 'TPM_COMMAND_FAILED';
  // Anything the transport or a resource manager reports is a reachability problem.
  if (layer === LAYER_TCTI || layer === LAYER_RESMGR) return 'TPM_UNAVAILABLE';
  if (BASE_LINK_FAILURES.has(rc & 0xffff)) return 'TPM_UNAVAILABLE';
  return 'INTERNAL';
}

/** The AttestdError for a failed call `op`; `decode` is Tss2_RC_Decode. */
export function rcError(op: string, rc: number, decode: (rc: number) => string): AttestdError {
  const hex = (rc >>> 0).toString(16).padStart(8, '0');
  return new AttestdError(classifyRc(rc), `${op} failed: 0x${hex} ${decode(rc)}`);
}
