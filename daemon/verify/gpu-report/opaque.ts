/**
 * NVIDIA's opaque data in the SPDM MEASUREMENTS response: a list of fields, each
 * { type u16 LE, size u16 LE, value[size] }, carrying what the measurements alone do not
 * say: driver and VBIOS versions, project and SKU names, the FWID, and device status.
 * Field numbers are NVIDIA's (as its verifiers name them, OPAQUE_FIELD_ID_*). Attacker-
 * controlled bytes: each size is checked against what remains; unknown types are kept raw.
 */
import { AttestdError } from '../../base/errors.js';
import { ByteReader } from '../bytes/reader.js';

/** NVIDIA opaque field numbers, by the names this code gives them. */
export const OPAQUE_FIELD = {
  certIssuerName: 1,
  certAuthorityKeyId: 2,
  driverVersion: 3,
  gpuInfo: 4,
  sku: 5,
  vbiosVersion: 6,
  manufacturerId: 7,
  tamperDetection: 8,
  smc: 9,
  vpr: 10,
  nvdec0Status: 11,
  msrsCount: 12,
  cprInfo: 13,
  boardId: 14,
  chipSku: 15,
  chipSkuMod: 16,
  project: 17,
  projectSku: 18,
  projectSkuMod: 19,
  fwid: 20,
  protectedPcieStatus: 21,
  switchPdi: 22,
  floorsweptPorts: 23,
  positionId: 24,
  lockSwitchStatus: 25,
  gpuLinkConnection: 32,
  sysEnableStatus: 33,
  opaqueDataVersion: 34,
  chipInfo: 35,
  featureFlag: 36,
} as const;

const NAME_OF = new Map<number, string>(Object.entries(OPAQUE_FIELD).map(([name, id]) => [id, name]));
const MAX_FIELDS = 128;
const STRING_FIELDS = new Set<number>([
  OPAQUE_FIELD.driverVersion, OPAQUE_FIELD.chipSku, OPAQUE_FIELD.chipSkuMod, OPAQUE_FIELD.project,
  OPAQUE_FIELD.projectSku, OPAQUE_FIELD.projectSkuMod, OPAQUE_FIELD.chipInfo,
]);

export interface OpaqueField {
  type: number;
  /** Our name for the type, or "field-N" for one this code does not know. */
  name: string;
  valueHex: string;
}

/** The fields a verifier and an operator care about, decoded; raw fields alongside. */
export interface NvidiaOpaqueData {
  fields: OpaqueField[];
  driverVersion?: string;
  /** As NVIDIA writes it, e.g. "96.00.9f.00.01" (lowercase hex for GPUs). */
  vbiosVersion?: string;
  project?: string;
  projectSku?: string;
  projectSkuMod?: string;
  chipSku?: string;
  chipSkuMod?: string;
  chipInfo?: string;
  boardId?: number;
  fwidHex?: string;
  /** Per-index measurement counters (MSRSCNT), u32 each. */
  measurementCounts?: number[];
  protectedPcieStatus?: number;
  nvdec0Status?: number;
}

const PREFIX = 'opaque data: ';

function malformed(why: string): never {
  throw new AttestdError('GPU_REPORT_MALFORMED', PREFIX + why);
}

const where = (): string => PREFIX;

/** NUL-terminated (or NUL-padded) printable ASCII. */
function asciiString(value: Buffer, name: string): string {
  const nul = value.indexOf(0);
  const text = value.subarray(0, nul < 0 ? value.length : nul);
  if (nul >= 0 && value.subarray(nul).some((b) => b !== 0)) malformed(`${name} has bytes after its terminator`);
  for (const b of text) if (b < 0x20 || b > 0x7e) malformed(`${name} is not printable ASCII`);
  return text.toString('latin1');
}

/**
 * GPUs send the VBIOS version as 8 bytes: a u32 LE whose hex digits read "96.00.9f.00",
 * then the OEM byte; NVSwitches send it as text ("96.10.73.00.01").
 */
function vbiosVersion(value: Buffer): string {
  if (value.length === 8) {
    const hex = value.readUInt32LE(0).toString(16).padStart(8, '0');
    const oem = (value[4] ?? 0).toString(16).padStart(2, '0');
    return `${hex.slice(0, 2)}.${hex.slice(2, 4)}.${hex.slice(4, 6)}.${hex.slice(6, 8)}.${oem}`;
  }
  return asciiString(value, 'vbiosVersion');
}

function singleByte(value: Buffer, name: string): number {
  if (value.length !== 1) malformed(`${name} is ${value.length} bytes, expected 1`);
  return value[0] ?? 0;
}

function decode(out: NvidiaOpaqueData, type: number, name: string, value: Buffer): void {
  if (STRING_FIELDS.has(type)) {
    (out as unknown as Record<string, string>)[name] = asciiString(value, name);
    return;
  }
  switch (type) {
    case OPAQUE_FIELD.vbiosVersion:
      out.vbiosVersion = vbiosVersion(value);
      break;
    case OPAQUE_FIELD.boardId:
      if (value.length !== 4) malformed(`boardId is ${value.length} bytes, expected 4`);
      out.boardId = value.readUInt32LE(0);
      break;
    case OPAQUE_FIELD.fwid:
      if (value.length !== 48) malformed(`the FWID is ${value.length} bytes, expected 48`);
      out.fwidHex = value.toString('hex');
      break;
    case OPAQUE_FIELD.msrsCount:
      if (value.length % 4 !== 0) malformed('the measurement counts are not whole u32 values');
      out.measurementCounts = Array.from({ length: value.length / 4 }, (_, i) => value.readUInt32LE(i * 4));
      break;
    case OPAQUE_FIELD.protectedPcieStatus:
      out.protectedPcieStatus = singleByte(value, name);
      break;
    case OPAQUE_FIELD.nvdec0Status:
      out.nvdec0Status = singleByte(value, name);
      break;
    default:
      break;
  }
}

export function parseOpaqueData(data: Uint8Array): NvidiaOpaqueData {
  const r = new ByteReader(data, 'le', 'GPU_REPORT_MALFORMED', where);
  const out: NvidiaOpaqueData = { fields: [] };
  const seen = new Set<number>();
  while (r.remaining > 0) {
    if (out.fields.length >= MAX_FIELDS) malformed(`more than ${MAX_FIELDS} fields`);
    if (r.remaining < 4) malformed(`field header at ${r.offset} is truncated`);
    const type = r.u16('field type');
    const size = r.u16('field size');
    if (size > r.remaining) malformed(`field ${type} of ${size} bytes overruns the opaque data`);
    // A repeated field would let two readers of one report see different values.
    if (seen.has(type)) malformed(`field ${type} appears twice`);
    seen.add(type);
    const value = r.bytes(size, 'field value');
    const name = NAME_OF.get(type) ?? `field-${type}`;
    out.fields.push({ type, name, valueHex: value.toString('hex') });
    decode(out, type, name, value);
  }
  return out;
}
