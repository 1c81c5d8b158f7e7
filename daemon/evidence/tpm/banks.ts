/**
 * Which PCR banks a TPM has allocated: the answer to TPM2_GetCapability(TPM_CAP_PCRS), a
 * TPML_PCR_SELECTION with one entry per implemented hash (TPM 2.0 Part 2, 10.9.7; Part 3,
 * 30.2). An implemented bank with no PCR selected is not allocated: the TPM does not extend
 * it and PCR_Read returns nothing for it (TPM2_PCR_Allocate changes this at the next reset).
 *
 * Knowing the banks is not choosing them. The caller's policy picks what to quote; SHA-1 is
 * reported here when the TPM has it, and quoted only when a policy opts in to it.
 */
import type { HashAlg } from '../../verify/tpm-alg.js';
import { TPM_ALG } from '../../verify/tpm-alg.js';
import { TpmReader } from '../../verify/tpm-reader.js';
import { capabilityParse, refuse, TPM_CAP_PCRS } from './capability.js';

/** Banks in one answer: every hash a TPM could implement, with room to spare. */
export const MAX_IMPLEMENTED_BANKS = 16;
/** TPMS_PCR_SELECT.sizeofSelect: PCR_SELECT_MAX in tpm2-tss, which marshalled the answer. */
const MAX_SIZEOF_SELECT = 4;

/** In TPM_ALG_ID order, the order in which banks are reported whatever order the TPM used. */
const KNOWN: readonly [number, HashAlg][] = [
  [TPM_ALG.SHA1, 'sha1'],
  [TPM_ALG.SHA256, 'sha256'],
  [TPM_ALG.SHA384, 'sha384'],
  [TPM_ALG.SHA512, 'sha512'],
];

/**
 * The allocated banks of a marshalled TPM_CAP_PCRS answer, in TPM_ALG_ID order (sha1 first). Hashes this
 * code does not know (SM3-256, SHA3) are skipped, not refused: the TPM may have them, we just
 * cannot use them. The capability tag, the count, each sizeofSelect and the absence of
 * trailing bytes are checked, and a bank listed twice is refused (TPM_COMMAND_FAILED).
 */
export function parseAllocatedBanks(capabilityData: Uint8Array): HashAlg[] {
  return capabilityParse('pcrs', () => {
    const r = new TpmReader(capabilityData);
    const capability = r.u32();
    if (capability !== TPM_CAP_PCRS) refuse('pcrs', `capability ${capability}, not TPM_CAP_PCRS`);
    const count = r.u32();
    if (count > MAX_IMPLEMENTED_BANKS) refuse('pcrs', `${count} banks, more than ${MAX_IMPLEMENTED_BANKS}`);
    const seen = new Set<number>();
    const allocated = new Set<number>();
    for (let i = 0; i < count; i++) {
      const alg = r.u16();
      const size = r.u8();
      if (size > MAX_SIZEOF_SELECT) refuse('pcrs', `sizeofSelect ${size}`);
      const bitmap = r.bytes(size, 'pcrSelect');
      if (seen.has(alg)) refuse('pcrs', `algorithm 0x${alg.toString(16)} listed twice`);
      seen.add(alg);
      if (bitmap.some((b) => b !== 0)) allocated.add(alg);
    }
    r.end('TPMS_CAPABILITY_DATA');
    return KNOWN.filter(([id]) => allocated.has(id)).map(([, name]) => name);
  });
}
