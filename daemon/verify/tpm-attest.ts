/**
 * TPMS_ATTEST of a quote (TPM 2.0 Part 2, TPMS_ATTEST with TPMS_QUOTE_INFO) and of a
 * certification (TPMS_CERTIFY_INFO, made by TPM2_Certify). Parsing alone proves nothing: the
 * fields mean something only after the signature over these exact bytes has verified (see
 * quote.ts, ak-rotation.ts). The parser is still written for hostile input.
 */
import { AttestdError } from '../base/errors.js';
import { readPcrSelection, type PcrSelection } from './pcr.js';
import { TpmReader, malformed } from './tpm-reader.js';

/** TPM_GENERATED_VALUE: "\xffTCG", set only by the TPM on data it produced itself. */
export const TPM_GENERATED_VALUE = 0xff544347;
export const TPM_ST_ATTEST_QUOTE = 0x8018;
export const TPM_ST_ATTEST_CERTIFY = 0x8017;

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

/** The fields every TPMS_ATTEST starts with, whatever it attests. */
export interface AttestHeader {
  qualifiedSigner: Buffer;
  extraData: Buffer;
  clockInfo: ClockInfo;
  firmwareVersion: bigint;
}

export interface QuoteAttest extends AttestHeader {
  pcrSelections: PcrSelection[];
  pcrDigest: Buffer;
  /** The exact bytes that were parsed, which are the bytes the TPM signed. */
  raw: Buffer;
}

export interface CertifyAttest extends AttestHeader {
  /** TPM2B_NAME of the certified object: its nameAlg and the digest of its public area. */
  name: Buffer;
  /** Its qualified name: the name chained with its parents' names. */
  qualifiedName: Buffer;
  raw: Buffer;
}

/** Reads magic, type and the header; QUOTE_BAD_MAGIC, QUOTE_WRONG_TYPE unless `type` is the one expected. */
function readHeader(r: TpmReader, type: number, what: string): AttestHeader {
  const magic = r.u32();
  if (magic !== TPM_GENERATED_VALUE) {
    throw new AttestdError('QUOTE_BAD_MAGIC', `magic 0x${magic.toString(16)} is not TPM_GENERATED_VALUE`);
  }
  const got = r.u16();
  if (got !== type) {
    throw new AttestdError('QUOTE_WRONG_TYPE', `attestation type 0x${got.toString(16)} is not ${what}`);
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
  return { qualifiedSigner, extraData, clockInfo: { clock, resetCount, restartCount, safe: safeByte === 1 }, firmwareVersion };
}

/** Parses a quote's TPMS_ATTEST; the whole input must be the structure. */
export function parseQuoteAttest(bytes: Uint8Array): QuoteAttest {
  const r = new TpmReader(bytes);
  const header = readHeader(r, TPM_ST_ATTEST_QUOTE, 'a quote');
  const pcrSelections = readPcrSelection(r);
  const pcrDigest = r.tpm2b(MAX_DIGEST, 'pcrDigest');
  r.end('TPMS_ATTEST');
  return { ...header, pcrSelections, pcrDigest, raw: Buffer.from(bytes) };
}

/** Parses a certification's TPMS_ATTEST (TPM2_Certify); the whole input must be the structure. */
export function parseCertifyAttest(bytes: Uint8Array): CertifyAttest {
  const r = new TpmReader(bytes);
  const header = readHeader(r, TPM_ST_ATTEST_CERTIFY, 'a certification');
  const name = r.tpm2b(MAX_NAME, 'name');
  const qualifiedName = r.tpm2b(MAX_NAME, 'qualifiedName');
  r.end('TPMS_ATTEST');
  return { ...header, name, qualifiedName, raw: Buffer.from(bytes) };
}
