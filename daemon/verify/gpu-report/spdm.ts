/**
 * The evidence an NVIDIA GPU or NVSwitch returns: an SPDM 1.1 (DMTF DSP0274) GET_MEASUREMENTS
 * request followed by the MEASUREMENTS response, back to back. Attacker-controlled bytes:
 * every length is checked against what remains before it is used.
 *
 * Request (37 bytes, signature requested):
 *   0 SPDMVersion 0x11 | 1 code 0xE0 | 2 Param1 (bit 0: sign) | 3 Param2 (0xFF: all blocks)
 *   4 Nonce[32] | 36 SlotIDParam
 * Response:
 *   0 SPDMVersion | 1 code 0x60 | 2 Param1 | 3 Param2 (slot id) | 4 NumberOfBlocks
 *   5 MeasurementRecordLength (u24 LE) | 8 MeasurementRecord[L]
 *   8+L Nonce[32] | 40+L OpaqueLength (u16 LE) | 42+L OpaqueData[O] | 42+L+O Signature[96]
 * A record is NumberOfBlocks blocks of Index, MeasurementSpecification (bit 0: DMTF),
 * MeasurementSize (u16 LE) and a DMTF measurement: type (bit 7: raw bit stream), value size
 * (u16 LE), value.
 */
import { AttestdError } from '../../base/errors.js';

export const SPDM_VERSION_1_1 = 0x11;
const GET_MEASUREMENTS = 0xe0;
const MEASUREMENTS = 0x60;
export const NONCE_LENGTH = 32;
export const REQUEST_LENGTH = 4 + NONCE_LENGTH + 1;
/** ECDSA P-384 r||s: the only signature NVIDIA devices use. */
export const SIGNATURE_LENGTH = 96;
const RESPONSE_FIXED = 8 + NONCE_LENGTH + 2;
/** SPDM 1.1 caps opaque data at 1024 bytes. */
export const MAX_OPAQUE_LENGTH = 1024;
/** 255 blocks of 48-byte digests need under 14 KiB; the cap keeps hostile input cheap. */
export const MAX_REPORT_LENGTH = 64 * 1024;

const DMTF_TYPES = ['immutable-rom', 'mutable-firmware', 'hardware-config', 'firmware-config', 'measurement-manifest', 'device-mode', 'firmware-version', 'firmware-svn'];

export interface MeasurementBlock {
  /** SPDM measurement index, 1-based. */
  index: number;
  /** DMTFSpecMeasurementValueType bits 0..6 (1: mutable firmware). */
  valueType: number;
  valueTypeName: string;
  /** Bit 7 of the type: the value is a raw bit stream, not a digest. */
  rawBitStream: boolean;
  valueHex: string;
}

export interface SpdmReport {
  version: number;
  request: { param1: number; measurementOperation: number; nonceHex: string; slotId: number };
  response: { param1: number; param2: number; slotId: number; blocks: MeasurementBlock[]; nonceHex: string };
  /** The raw opaque data; see opaque.ts. */
  opaqueData: Buffer;
  signatureHex: string;
}

/** The report cut into what is signed and the signature. */
export interface SpdmFrame {
  request: Buffer;
  response: Buffer;
  /** request || response without its signature: the bytes the device signed (SPDM 1.1 L1). */
  signed: Buffer;
  /** r || s, 48 bytes each, big-endian. */
  signature: Buffer;
}

function malformed(why: string): never {
  throw new AttestdError('GPU_REPORT_MALFORMED', `SPDM report: ${why}`);
}

/**
 * Finds the signature from the length fields alone, so that nothing in the signed region is
 * interpreted before the signature is checked.
 */
export function frameSpdmReport(report: Uint8Array): SpdmFrame {
  const buf = Buffer.from(report.buffer, report.byteOffset, report.byteLength);
  if (buf.length > MAX_REPORT_LENGTH) malformed(`${buf.length} bytes, over ${MAX_REPORT_LENGTH}`);
  if (buf.length < REQUEST_LENGTH + RESPONSE_FIXED + SIGNATURE_LENGTH) malformed(`${buf.length} bytes is too short`);
  const version = buf[0];
  if (version !== SPDM_VERSION_1_1) malformed(`request version 0x${(version ?? 0).toString(16)}; only SPDM 1.1 (0x11) is supported`);
  if (buf[1] !== GET_MEASUREMENTS) malformed('the request is not GET_MEASUREMENTS');
  if (((buf[2] ?? 0) & 1) === 0) malformed('the request did not ask for a signature');
  const response = buf.subarray(REQUEST_LENGTH);
  if (response[0] !== version) malformed('the response version differs from the request version');
  if (response[1] !== MEASUREMENTS) malformed('the response is not MEASUREMENTS');
  const recordLength = response.readUIntLE(5, 3);
  if (recordLength > response.length - RESPONSE_FIXED - SIGNATURE_LENGTH) malformed('the measurement record overruns the response');
  const opaqueLength = response.readUInt16LE(8 + recordLength + NONCE_LENGTH);
  if (opaqueLength > MAX_OPAQUE_LENGTH) malformed(`opaque data of ${opaqueLength} bytes exceeds ${MAX_OPAQUE_LENGTH}`);
  const signatureAt = RESPONSE_FIXED + recordLength + opaqueLength;
  if (signatureAt + SIGNATURE_LENGTH !== response.length) {
    malformed(`the response is ${response.length} bytes; its fields and a ${SIGNATURE_LENGTH}-byte signature make ${signatureAt + SIGNATURE_LENGTH}`);
  }
  return {
    request: buf.subarray(0, REQUEST_LENGTH),
    response,
    signed: buf.subarray(0, REQUEST_LENGTH + signatureAt),
    signature: response.subarray(signatureAt),
  };
}

function parseRecord(record: Buffer, count: number): MeasurementBlock[] {
  const blocks: MeasurementBlock[] = [];
  const seen = new Set<number>();
  let pos = 0;
  while (pos < record.length) {
    if (blocks.length >= count) malformed(`the measurement record holds more than the ${count} blocks announced`);
    if (record.length - pos < 4) malformed(`measurement block ${blocks.length + 1} header is truncated`);
    const index = record[pos] ?? 0;
    const spec = record[pos + 1] ?? 0;
    const size = record.readUInt16LE(pos + 2);
    pos += 4;
    if (size > record.length - pos) malformed(`measurement block ${index} overruns the record`);
    if (index === 0 || index === 0xff) malformed(`measurement index ${index} is reserved`);
    if (seen.has(index)) malformed(`measurement index ${index} appears twice`);
    seen.add(index);
    if ((spec & 1) === 0) malformed(`measurement block ${index} is not in the DMTF format`);
    if (size < 3) malformed(`measurement block ${index} is too short for a DMTF measurement`);
    const type = record[pos] ?? 0;
    const valueSize = record.readUInt16LE(pos + 1);
    if (valueSize !== size - 3) malformed(`measurement block ${index}: value size ${valueSize} does not fit block size ${size}`);
    const valueType = type & 0x7f;
    blocks.push({
      index,
      valueType,
      valueTypeName: DMTF_TYPES[valueType] ?? `type-${valueType}`,
      rawBitStream: (type & 0x80) !== 0,
      valueHex: record.subarray(pos + 3, pos + size).toString('hex'),
    });
    pos += size;
  }
  if (blocks.length !== count) malformed(`${count} blocks announced, ${blocks.length} present`);
  return blocks;
}

/** Frames and parses the whole report. Callers verify the signature first (verify.ts). */
export function parseSpdmReport(report: Uint8Array): SpdmReport {
  const { request, response, signature } = frameSpdmReport(report);
  const slotId = (request[36] ?? 0) & 0x0f;
  const param2 = response[3] ?? 0;
  if ((param2 & 0x0f) !== slotId) malformed(`the response is from slot ${param2 & 0x0f}, the request asked slot ${slotId}`);
  const recordLength = response.readUIntLE(5, 3);
  const nonceAt = 8 + recordLength;
  const opaqueLength = response.readUInt16LE(nonceAt + NONCE_LENGTH);
  const opaqueAt = nonceAt + NONCE_LENGTH + 2;
  return {
    version: request[0] ?? 0,
    request: {
      param1: request[2] ?? 0,
      measurementOperation: request[3] ?? 0,
      nonceHex: request.subarray(4, 4 + NONCE_LENGTH).toString('hex'),
      slotId,
    },
    response: {
      param1: response[2] ?? 0,
      param2,
      slotId: param2 & 0x0f,
      blocks: parseRecord(response.subarray(8, nonceAt), response[4] ?? 0),
      nonceHex: response.subarray(nonceAt, nonceAt + NONCE_LENGTH).toString('hex'),
    },
    opaqueData: Buffer.from(response.subarray(opaqueAt, opaqueAt + opaqueLength)),
    signatureHex: signature.toString('hex'),
  };
}
