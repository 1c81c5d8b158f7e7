/**
 * TPMS_ATTEST of a quote (TPM 2.0 Part 2, TPMS_ATTEST with TPMS_QUOTE_INFO). Parsing alone
 * proves nothing: the fields mean something only after the signature over these exact bytes
 * has verified (see quote.ts). The parser is still written for hostile input.
 */
import { AttestdError } from '../base/errors.js';
import { readPcrSelection, type PcrSelection } from './pcr.js';
import { TpmReader, malformed } from './tpm-reader.js';

/** TPM_GENERATED_VALUE: "\xffTCG", set only by the TPM on data it produced itself. */
export const TPM_GENERATED_VALUE = 0xff544347;
export const TPM_ST_ATTEST_QUOTE = 0x8018;

/** sizeof(TPMU_NAME): a hash algorithm id and the largest digest. */
const MAX_NAME = 2 + 64;
/** sizeof(TPMU_HA): TPM2B_DATA and TPM2B_DIGEST hold at most the largest digest. */
const MAX_DATA = 64;
const MAX_DIGEST = 64;

export interface ClockInfo {
  clock: bigint;
  resetCount: number;
  restartCount: number;
  safe: boolean;
}

export interface QuoteAttest {
  qualifiedSigner: Buffer;
  extraData: Buffer;
  clockInfo: ClockInfo;
  firmwareVersion: bigint;
  pcrSelections: PcrSelection[];
  pcrDigest: Buffer;
  /** The exact bytes that were parsed, which are the bytes the TPM signed. */
  raw: Buffer;
}

/** Parses a quote's TPMS_ATTEST; the whole input must be the structure. */
export function parseQuoteAttest(bytes: Uint8Array): QuoteAttest {
  const r = new TpmReader(bytes);
  const magic = r.u32();
  if (magic !== TPM_GENERATED_VALUE) {
    throw new AttestdError('QUOTE_BAD_MAGIC', `magic 0x${magic.toString(16)} is not TPM_GENERATED_VALUE`);
  }
  const type = r.u16();
  if (type !== TPM_ST_ATTEST_QUOTE) {
    throw new AttestdError('QUOTE_WRONG_TYPE', `attestation type 0x${type.toString(16)} is not a quote`);
  }
  const qualifiedSigner = r.tpm2b(MAX_NAME, 'qualifiedSigner');
  const extraData = r.tpm2b(MAX_DATA, 'extraData');
  const clock = r.u64();
  const resetCount = r.u32();
  const restartCount = r.u32();
  const safeByte = r.u8();
  // TPMI_YES_NO: any other value is a marshalling error.
  if (safeByte > 1) malformed(`clockInfo.safe is ${safeByte}`);
  const firmwareVersion = r.u64();
  const pcrSelections = readPcrSelection(r);
  const pcrDigest = r.tpm2b(MAX_DIGEST, 'pcrDigest');
  r.end('TPMS_ATTEST');
  return {
    qualifiedSigner,
    extraData,
    clockInfo: { clock, resetCount, restartCount, safe: safeByte === 1 },
    firmwareVersion,
    pcrSelections,
    pcrDigest,
    raw: Buffer.from(bytes),
  };
}
