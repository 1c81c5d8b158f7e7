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
 *   and, in some real captures (H100 under Confidential Containers), a byte or a few after the
 *   signature: outside the signed region, so kept apart as unsigned and never interpreted.
 * A record is NumberOfBlocks blocks of Index, MeasurementSpecification (bit 0: DMTF),
 * MeasurementSize (u16 LE) and a DMTF measurement: type (bit 7: raw bit stream), value size
 * (u16 LE), value.
 */
import { AttestdError } from '../../base/errors.js';
import { ByteReader } from '../bytes/reader.js';

export const SPDM_VERSION_1_1 = 0x11;
const GET_MEASUREMENTS = 0xe0;
const MEASUREMENTS = 0x60;
export const NONCE_LENGTH = 32;
export const REQUEST_LENGTH = 4 + NONCE_LENGTH + 1;
/** ECDSA P-384 r||s: the only signature NVIDIA devices use. */
export const SIGNATURE_LENGTH = 96;
const RESPONSE_FIXED = 8 + NONCE_LENGTH + 2;
/**
 * Bytes after the signature that are tolerated (and reported, never read). Real H100
 * captures carry one; more than a few is no known device's output, so it stays malformed.
 */
export const MAX_TRAILING_BYTES = 16;
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
  /** How many unsigned bytes followed the signature (see frameSpdmReport). */
  unsignedTrailingBytes: number;
}

/** The report cut into what is signed and the signature. */
export interface SpdmFrame {
  request: Buffer;
  response: Buffer;
  /** request || response without its signature: the bytes the device signed (SPDM 1.1 L1). */
  signed: Buffer;
  /** r || s, 48 bytes each, big-endian. */
  signature: Buffer;
  /** Bytes after the signature: not signed, so never believed; only their count is reported. */
  unsignedTrailing: Buffer;
}

const PREFIX = 'SPDM report: ';

function malformed(why: string): never {
  throw new AttestdError('GPU_REPORT_MALFORMED', PREFIX + why);
}

const where = (): string => PREFIX;

/**
 * Finds the signature from the length fields alone, so that nothing in the signed region is
 * interpreted before the signature is checked.
 */
export function frameSpdmReport(report: Uint8Array): SpdmFrame {
  const buf = Buffer.from(report.buffer, report.byteOffset, report.byteLength);
  if (buf.length > MAX_REPORT_LENGTH) malformed(`${buf.length} bytes, over ${MAX_REPORT_LENGTH}`);
  if (buf.length < REQUEST_LENGTH + RESPONSE_FIXED + SIGNATURE_LENGTH) malformed(`${buf.length} bytes is too short`);
  const response = buf.subarray(REQUEST_LENGTH);
  // The length check above covers every fixed field read here.
  const r = new ByteReader(buf, 'le', 'GPU_REPORT_MALFORMED', where);
  const version = r.u8('SPDMVersion');
  if (version !== SPDM_VERSION_1_1) malformed(`request version 0x${version.toString(16)}; only SPDM 1.1 (0x11) is supported`);
  if (r.u8('RequestResponseCode') !== GET_MEASUREMENTS) malformed('the request is not GET_MEASUREMENTS');
  if ((r.u8('Param1') & 1) === 0) malformed('the request did not ask for a signature');
  r.skip(REQUEST_LENGTH - 3, 'the rest of the request');
  if (r.u8('SPDMVersion') !== version) malformed('the response version differs from the request version');
  if (r.u8('RequestResponseCode') !== MEASUREMENTS) malformed('the response is not MEASUREMENTS');
  r.skip(3, 'Param1, Param2, NumberOfBlocks');
  const recordLength = r.u24('MeasurementRecordLength');
  if (recordLength > response.length - RESPONSE_FIXED - SIGNATURE_LENGTH) malformed('the measurement record overruns the response');
  r.skip(recordLength + NONCE_LENGTH, 'MeasurementRecord, Nonce');
  const opaqueLength = r.u16('OpaqueLength');
  if (opaqueLength > MAX_OPAQUE_LENGTH) malformed(`opaque data of ${opaqueLength} bytes exceeds ${MAX_OPAQUE_LENGTH}`);
  const signatureAt = RESPONSE_FIXED + recordLength + opaqueLength;
  const end = signatureAt + SIGNATURE_LENGTH;
  if (end > response.length || end + MAX_TRAILING_BYTES < response.length) {
    malformed(`the response is ${response.length} bytes; its fields and a ${SIGNATURE_LENGTH}-byte signature make ${end}` +
      ` (at most ${MAX_TRAILING_BYTES} unsigned bytes may follow)`);
  }
  return {
    request: buf.subarray(0, REQUEST_LENGTH),
    response: response.subarray(0, end),
    signed: buf.subarray(0, REQUEST_LENGTH + signatureAt),
    signature: response.subarray(signatureAt, end),
    unsignedTrailing: response.subarray(end),
  };
}

/** NumberOfBlocks measurement blocks, filling the record exactly. */
function parseRecord(r: ByteReader, count: number): MeasurementBlock[] {
  const blocks: MeasurementBlock[] = [];
  const seen = new Set<number>();
  while (r.remaining > 0) {
    if (blocks.length >= count) malformed(`the measurement record holds more than the ${count} blocks announced`);
    if (r.remaining < 4) malformed(`measurement block ${blocks.length + 1} header is truncated`);
    const index = r.u8('Index');
    const spec = r.u8('MeasurementSpecification');
    const size = r.u16('MeasurementSize');
    if (size > r.remaining) malformed(`measurement block ${index} overruns the record`);
    if (index === 0 || index === 0xff) malformed(`measurement index ${index} is reserved`);
    if (seen.has(index)) malformed(`measurement index ${index} appears twice`);
    seen.add(index);
    if ((spec & 1) === 0) malformed(`measurement block ${index} is not in the DMTF format`);
    if (size < 3) malformed(`measurement block ${index} is too short for a DMTF measurement`);
    const type = r.u8('DMTFSpecMeasurementValueType');
    const valueSize = r.u16('DMTFSpecMeasurementValueSize');
    if (valueSize !== size - 3) malformed(`measurement block ${index}: value size ${valueSize} does not fit block size ${size}`);
    const valueType = type & 0x7f;
    blocks.push({
      index,
      valueType,
      valueTypeName: DMTF_TYPES[valueType] ?? `type-${valueType}`,
      rawBitStream: (type & 0x80) !== 0,
      valueHex: r.hex(valueSize, 'DMTFSpecMeasurementValue'),
    });
  }
  if (blocks.length !== count) malformed(`${count} blocks announced, ${blocks.length} present`);
  return blocks;
}

/** Frames and parses the whole report. Callers verify the signature first (verify.ts). */
export function parseSpdmReport(report: Uint8Array): SpdmReport {
  const { request, response, signature, unsignedTrailing } = frameSpdmReport(report);
  const q = new ByteReader(request, 'le', 'GPU_REPORT_MALFORMED', where);
  const version = q.u8('SPDMVersion');
  q.skip(1, 'RequestResponseCode');
  const requestParam1 = q.u8('Param1');
  const measurementOperation = q.u8('Param2');
  const requestNonce = q.hex(NONCE_LENGTH, 'Nonce');
  const slotId = q.u8('SlotIDParam') & 0x0f;
  q.end('the request');

  const p = new ByteReader(response, 'le', 'GPU_REPORT_MALFORMED', where);
  p.skip(2, 'SPDMVersion, RequestResponseCode');
  const param1 = p.u8('Param1');
  const param2 = p.u8('Param2');
  if ((param2 & 0x0f) !== slotId) malformed(`the response is from slot ${param2 & 0x0f}, the request asked slot ${slotId}`);
  const count = p.u8('NumberOfBlocks');
  const blocks = parseRecord(p.sub(p.u24('MeasurementRecordLength'), 'MeasurementRecord'), count);
  const nonceHex = p.hex(NONCE_LENGTH, 'Nonce');
  const opaqueData = Buffer.from(p.bytes(p.u16('OpaqueLength'), 'OpaqueData'));
  p.skip(SIGNATURE_LENGTH, 'Signature');
  p.end('the response');
  return {
    version,
    request: { param1: requestParam1, measurementOperation, nonceHex: requestNonce, slotId },
    response: { param1, param2, slotId: param2 & 0x0f, blocks, nonceHex },
    opaqueData,
    signatureHex: signature.toString('hex'),
    unsignedTrailingBytes: unsignedTrailing.length,
  };
}
