/**
 * TPM2_GetCapability (TPM 2.0 Part 3, 30.2) and the TPM properties answer
 * (TPML_TAGGED_TPM_PROPERTY, Part 2, 10.9.8). What the TPM sends is marshalled back into
 * bytes by libtss2-mu and parsed here with every count bounded before anything is read.
 */
import { AttestdError } from '../../base/errors.js';
import { TpmReader } from '../../verify/tpm-reader.js';
import { Arena } from './arena.js';
import { rcError } from './rc.js';
import { sendCommand } from './send.js';
import type { Ptr, Tss } from './tss.js';

export const TPM_CAP_PCRS = 5;
export const TPM_CAP_TPM_PROPERTIES = 6;
/** TPM_PT_FIXED + 44: the largest NV_Read or NV_Write data size the TPM takes at once. */
export const TPM_PT_NV_BUFFER_MAX = 0x100 + 44;
/** More than any one TPM_CAP_TPM_PROPERTIES answer holds (TPM2_MAX_TPM_PROPERTIES is 127 with a 1 KiB buffer). */
export const MAX_PROPERTIES = 127;

/**
 * One GetCapability call without sessions: the marshalled TPMS_CAPABILITY_DATA. A TPM error
 * is TPM_COMMAND_FAILED, a broken link TPM_UNAVAILABLE. `moreData` is ignored: callers ask
 * for answers that fit in one response.
 */
export async function getCapability(
  tss: Tss,
  ctx: Ptr,
  capability: number,
  property: number,
  count: number,
): Promise<Buffer> {
  const arena = new Arena(tss);
  try {
    const moreData = arena.value();
    const capabilityData = arena.output();
    const rc = await sendCommand(() =>
      tss.getCapability(ctx, capability, property, count, { moreData, capabilityData }),
    );
    if (rc !== 0) throw rcError(`Esys_GetCapability(${capability}, 0x${property.toString(16)})`, rc, tss.decodeRc);
    const bytes = arena.take(capabilityData, 'TPMS_CAPABILITY_DATA');
    if (bytes === null) throw new AttestdError('TPM_COMMAND_FAILED', 'Esys_GetCapability returned no data');
    return bytes;
  } finally {
    arena.release();
  }
}

/**
 * The property -> value pairs of a TPM_CAP_TPM_PROPERTIES answer. The capability tag, the
 * count (at most `max`) and the absence of trailing bytes are checked; a property listed
 * twice is refused. Anything malformed is TPM_COMMAND_FAILED.
 */
export function parseTpmProperties(capabilityData: Uint8Array, max = MAX_PROPERTIES): Map<number, number> {
  return capabilityParse('properties', () => {
    const r = new TpmReader(capabilityData);
    const capability = r.u32();
    if (capability !== TPM_CAP_TPM_PROPERTIES) refuse('properties', `capability ${capability}`);
    const count = r.u32();
    if (count > max) refuse('properties', `${count} properties, more than ${max}`);
    const out = new Map<number, number>();
    for (let i = 0; i < count; i++) {
      const property = r.u32();
      const value = r.u32();
      if (out.has(property)) refuse('properties', `property 0x${property.toString(16)} listed twice`);
      out.set(property, value);
    }
    r.end('TPMS_CAPABILITY_DATA');
    return out;
  });
}

/** Runs a parser; malformed input (QUOTE_MALFORMED from the reader) becomes TPM_COMMAND_FAILED. */
export function capabilityParse<T>(what: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof AttestdError && err.code === 'TPM_COMMAND_FAILED') throw err;
    throw new AttestdError('TPM_COMMAND_FAILED', `malformed GetCapability(${what}) response: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

export function refuse(what: string, reason: string): never {
  throw new AttestdError('TPM_COMMAND_FAILED', `GetCapability(${what}) returned ${reason}`);
}
