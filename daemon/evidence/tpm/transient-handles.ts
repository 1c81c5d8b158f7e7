/**
 * The answer to TPM2_GetCapability(TPM_CAP_HANDLES, TRANSIENT_FIRST): which transient
 * objects are loaded in the TPM (TPM 2.0 Part 2, 10.4.2 TPML_HANDLE and 10.10.2
 * TPMS_CAPABILITY_DATA; Part 3, 30.2).
 *
 * The bytes are marshalled from what the TPM sent, so the count is checked against the
 * number asked for before any handle is read, and every handle must be a transient one:
 * the caller flushes what this returns, and must never be talked into flushing anything else.
 */
import { AttestdError } from '../../base/errors.js';
import { TpmReader } from '../../verify/tpm-reader.js';

/** TPM_CAP_HANDLES. */
export const TPM_CAP_HANDLES = 1;
/** TPM_HT_TRANSIENT << 24: the first transient object handle, and the property to ask for. */
export const TRANSIENT_FIRST = 0x80000000;
/** TRANSIENT_FIRST + 0x00fffffe: the last handle a transient object can have. */
export const TRANSIENT_LAST = 0x80fffffe;
/**
 * Handles asked for at once: more than the transient object slots of any TPM this runs on
 * (three on swtpm and the reference simulator, a few more on hardware).
 */
export const MAX_TRANSIENT_HANDLES = 16;

/**
 * The transient handles in a marshalled TPMS_CAPABILITY_DATA. Checks that the capability is
 * TPM_CAP_HANDLES, that the count is at most `max`, that every handle lies in
 * TRANSIENT_FIRST..TRANSIENT_LAST and appears once, and that no bytes follow the list.
 * Anything else is TPM_COMMAND_FAILED.
 */
export function parseTransientHandles(capabilityData: Uint8Array, max = MAX_TRANSIENT_HANDLES): number[] {
  try {
    const r = new TpmReader(capabilityData);
    const capability = r.u32();
    if (capability !== TPM_CAP_HANDLES) refuse(`capability ${capability}, not TPM_CAP_HANDLES`);
    const count = r.u32();
    if (count > max) refuse(`${count} handles, more than the ${max} asked for`);
    const handles: number[] = [];
    const seen = new Set<number>();
    for (let i = 0; i < count; i++) {
      const h = r.u32();
      if (h < TRANSIENT_FIRST || h > TRANSIENT_LAST) refuse(`handle 0x${hex(h)} is not a transient object`);
      if (seen.has(h)) refuse(`handle 0x${hex(h)} is listed twice`);
      seen.add(h);
      handles.push(h);
    }
    r.end('TPMS_CAPABILITY_DATA');
    return handles;
  } catch (err) {
    if (err instanceof AttestdError && err.code === 'TPM_COMMAND_FAILED') throw err;
    throw new AttestdError('TPM_COMMAND_FAILED', `malformed GetCapability(handles) response: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

export function hex(handle: number): string {
  return (handle >>> 0).toString(16).padStart(8, '0');
}

function refuse(reason: string): never {
  throw new AttestdError('TPM_COMMAND_FAILED', `GetCapability(handles) returned ${reason}`);
}
