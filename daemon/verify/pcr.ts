/**
 * PCR selections (TPML_PCR_SELECTION, TPM 2.0 Part 2) and the PCR digest that TPM2_Quote
 * signs (TPM 2.0 Part 3, TPM2_Quote: the hash, with the signing scheme's hash algorithm,
 * of the selected PCR values, bank by bank in selection order, PCRs in ascending order).
 */
import { createHash } from 'node:crypto';
import { AttestdError } from '../base/errors.js';
import { digestSize, hashAlgFromId, hashAlgId, type HashAlg } from './tpm-alg.js';
import { TpmReader, TpmWriter, malformed } from './tpm-reader.js';

export interface PcrBank {
  alg: HashAlg;
  /** PCR index -> value. */
  values: Map<number, Buffer>;
}

export interface PcrSelection {
  alg: HashAlg;
  /** Ascending PCR indices. */
  pcrs: number[];
}

/** A TPM has at most a handful of banks; anything larger is not a real quote. */
export const MAX_PCR_BANKS = 16;
/** PCR_SELECT_MAX for a 32-PCR TPM: PCRs 0..31. */
export const PCR_SELECT_MAX = 4;
/** PCR_SELECT_MIN: a TPM with 24 PCRs always takes and emits at least three bytes. */
export const PCR_SELECT_MIN = 3;

/**
 * Hash of the selected PCR values in selection order, PCRs ascending, as TPM2_Quote
 * computes it. Every selected PCR must be presented with the bank's digest length, else
 * QUOTE_PCR_SELECTION_MISMATCH; a bank presented twice is ambiguous and refused the same way.
 */
export function pcrDigest(selections: PcrSelection[], banks: PcrBank[], digestAlg: HashAlg): Buffer {
  const h = createHash(digestAlg);
  for (const sel of selections) {
    const bank = uniqueBank(banks, sel.alg);
    const size = digestSize(sel.alg);
    for (const index of sel.pcrs) {
      const value = bank?.values.get(index);
      if (value === undefined) {
        throw new AttestdError('QUOTE_PCR_SELECTION_MISMATCH', `${sel.alg} PCR ${index} is quoted but not presented`);
      }
      if (value.length !== size) {
        throw new AttestdError(
          'QUOTE_PCR_SELECTION_MISMATCH',
          `${sel.alg} PCR ${index} is ${value.length} bytes, expected ${size}`,
        );
      }
      h.update(value);
    }
  }
  return h.digest();
}

function uniqueBank(banks: PcrBank[], alg: HashAlg): PcrBank | undefined {
  const matching = banks.filter((b) => b.alg === alg);
  if (matching.length > 1) {
    throw new AttestdError('QUOTE_PCR_SELECTION_MISMATCH', `the ${alg} bank is presented more than once`);
  }
  return matching[0];
}

/** TPML_PCR_SELECTION bytes; the bitmap is PCR_SELECT_MIN bytes long unless a PCR needs more. */
export function encodePcrSelection(selections: PcrSelection[]): Buffer {
  if (selections.length > MAX_PCR_BANKS) {
    throw new AttestdError('INVALID_ARGUMENT', `at most ${MAX_PCR_BANKS} PCR banks can be selected`);
  }
  const w = new TpmWriter().u32(selections.length);
  for (const sel of selections) {
    let previous = -1;
    for (const index of sel.pcrs) {
      if (!Number.isInteger(index) || index <= previous || index >= PCR_SELECT_MAX * 8) {
        throw new AttestdError('INVALID_ARGUMENT', `PCR indices must ascend within 0..${PCR_SELECT_MAX * 8 - 1}`);
      }
      previous = index;
    }
    const size = Math.max(PCR_SELECT_MIN, Math.ceil((previous + 1) / 8));
    const bitmap = Buffer.alloc(size);
    for (const index of sel.pcrs) {
      bitmap[index >> 3] = (bitmap[index >> 3] ?? 0) | (1 << (index & 7));
    }
    w.u16(hashAlgId(sel.alg)).u8(size).bytes(bitmap);
  }
  return w.finish();
}

/**
 * Reads a TPML_PCR_SELECTION. Counts are bounded before anything is read; a bank selected
 * twice is refused, since a TPM never emits it and it would make the selection ambiguous.
 */
export function readPcrSelection(r: TpmReader): PcrSelection[] {
  const count = r.u32();
  if (count > MAX_PCR_BANKS) malformed(`TPML_PCR_SELECTION: ${count} banks exceeds ${MAX_PCR_BANKS}`);
  const out: PcrSelection[] = [];
  for (let i = 0; i < count; i++) {
    const alg = hashAlgFromId(r.u16());
    const sizeofSelect = r.u8();
    if (sizeofSelect > PCR_SELECT_MAX) {
      malformed(`TPMS_PCR_SELECTION: sizeofSelect ${sizeofSelect} exceeds ${PCR_SELECT_MAX}`);
    }
    const bitmap = r.bytes(sizeofSelect, 'pcrSelect');
    if (out.some((s) => s.alg === alg)) malformed(`TPML_PCR_SELECTION: ${alg} bank selected twice`);
    const pcrs: number[] = [];
    for (let index = 0; index < sizeofSelect * 8; index++) {
      if (((bitmap[index >> 3] ?? 0) >> (index & 7)) & 1) pcrs.push(index);
    }
    out.push({ alg, pcrs });
  }
  return out;
}

/** A whole TPML_PCR_SELECTION; trailing bytes are refused. */
export function parsePcrSelection(bytes: Uint8Array): PcrSelection[] {
  const r = new TpmReader(bytes);
  const out = readPcrSelection(r);
  r.end('TPML_PCR_SELECTION');
  return out;
}
