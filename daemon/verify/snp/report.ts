/**
 * The SEV-SNP ATTESTATION_REPORT (SEV-SNP firmware ABI, "ATTESTATION_REPORT Structure"):
 * 1184 bytes, little-endian, versions 2, 3 and 5. Parsing checks the shape only (size,
 * version, algorithm, reserved bytes); it proves nothing about who made the report. Use
 * verifySnpReport for that: it checks the signature before it believes any field here.
 */
import { AttestdError } from '../../base/errors.js';
import { decodeTcb } from './tcb.js';
import type { FirmwareVersion, GuestPolicy, PlatformInfo, SnpReport, SnpSigningKey } from './types.js';

export const SNP_REPORT_SIZE = 0x4a0;
/** The signature covers bytes 0x000..0x29F. */
export const SNP_SIGNED_LENGTH = 0x2a0;
export const SNP_SIGNATURE_OFFSET = 0x2a0;
/** r and s are 72-byte little-endian fields; P-384 uses the low 48 bytes of each. */
const SIG_COMPONENT_FIELD = 72;
const SIG_COMPONENT_BYTES = 48;

const SUPPORTED_VERSIONS = new Set([2, 3, 5]);
const ECDSA_P384_SHA384 = 1;
const SIGNING_KEYS: Record<number, SnpSigningKey> = { 0: 'VCEK', 1: 'VLEK' };
const SIGNING_KEY_NONE = 7;

/**
 * Policy bits each report version can carry: 16-20 from the start, CXL_ALLOW,
 * MEM_AES_256_XTS, RAPL_DIS and CIPHERTEXT_HIDING (21-24) from version 3, PAGE_SWAP_DISABLE
 * (25) from version 5. Firmware refuses to launch a guest with an undefined bit set, so a
 * report showing one did not come from firmware of that version.
 */
const POLICY_DEFINED_HIGH_BIT: Record<number, number> = { 2: 20, 3: 24, 5: 25 };
const POLICY_RESERVED_ONE = 1n << 17n;

function malformed(why: string): never {
  throw new AttestdError('CVM_REPORT_MALFORMED', `SEV-SNP report: ${why}`);
}

function allZero(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
}

function requireZero(b: Uint8Array, from: number, to: number): void {
  if (!allZero(b, from, to)) malformed(`reserved bytes 0x${from.toString(16)}..0x${(to - 1).toString(16)} are not zero`);
}

const hex = (b: Uint8Array, from: number, len: number): string => Buffer.from(b.subarray(from, from + len)).toString('hex');

/** A little-endian field as big-endian hex of its significant bytes. */
function leToBeHex(b: Uint8Array, from: number, len: number): string {
  return Buffer.from(b.subarray(from, from + len)).reverse().toString('hex');
}

function decodePolicy(raw: bigint, version: number): GuestPolicy {
  const bit = (n: number): boolean => ((raw >> BigInt(n)) & 1n) === 1n;
  const high = POLICY_DEFINED_HIGH_BIT[version] ?? 20;
  if ((raw & POLICY_RESERVED_ONE) === 0n) malformed('guest policy bit 17 (reserved, must be one) is clear');
  if (raw >> BigInt(high + 1) !== 0n) malformed(`guest policy 0x${raw.toString(16)} sets bits undefined for report version ${version}`);
  return {
    raw: raw.toString(16).padStart(16, '0'),
    abiMinor: Number(raw & 0xffn),
    abiMajor: Number((raw >> 8n) & 0xffn),
    smt: bit(16),
    migrateMa: bit(18),
    debug: bit(19),
    singleSocket: bit(20),
    cxl: bit(21),
    memAes256Xts: bit(22),
    raplDisable: bit(23),
    ciphertextHiding: bit(24),
    pageSwapDisable: bit(25),
  };
}

function decodePlatformInfo(raw: bigint): PlatformInfo {
  const bit = (n: number): boolean => ((raw >> BigInt(n)) & 1n) === 1n;
  return {
    raw: raw.toString(16).padStart(16, '0'),
    smtEnabled: bit(0),
    tsmeEnabled: bit(1),
    eccEnabled: bit(2),
    raplDisabled: bit(3),
    ciphertextHidingEnabled: bit(4),
    aliasCheckComplete: bit(5),
  };
}

function firmware(b: Uint8Array, at: number): FirmwareVersion {
  return { build: b[at] as number, minor: b[at + 1] as number, major: b[at + 2] as number };
}

/** Version and signing algorithm only: enough to decide how to verify, before anything is trusted. */
export function snpReportHeader(bytes: Uint8Array): { version: 2 | 3 | 5 } {
  if (!(bytes instanceof Uint8Array)) malformed('not a byte array');
  if (bytes.length !== SNP_REPORT_SIZE) malformed(`${bytes.length} bytes, expected ${SNP_REPORT_SIZE}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(0x00, true);
  if (!SUPPORTED_VERSIONS.has(version)) malformed(`unsupported report version ${version}`);
  const algo = view.getUint32(0x34, true);
  if (algo !== ECDSA_P384_SHA384) malformed(`unsupported signature algorithm ${algo}`);
  return { version: version as 2 | 3 | 5 };
}

/**
 * Decodes a report. `familyHint` sets the TCB layout for version 2 reports, which do not
 * carry their CPU family; without it they are read in the Milan/Genoa layout.
 */
export function parseSnpReport(bytes: Uint8Array, familyHint?: number): SnpReport {
  const { version } = snpReportHeader(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (at: number): number => view.getUint32(at, true);
  const u64 = (at: number): bigint => view.getBigUint64(at, true);

  const keyInfo = u32(0x48);
  if (keyInfo >>> 5 !== 0) malformed('reserved bits at 0x48 are set');
  const keySel = (keyInfo >>> 2) & 0x7;
  if (keySel === SIGNING_KEY_NONE) malformed('the report is not signed (SIGNING_KEY = 7)');
  const signingKey = SIGNING_KEYS[keySel] ?? malformed(`reserved SIGNING_KEY value ${keySel}`);
  requireZero(bytes, 0x4c, 0x50);

  let cpuid: SnpReport['cpuid'];
  if (version >= 3) {
    cpuid = { family: bytes[0x188] as number, model: bytes[0x189] as number, stepping: bytes[0x18a] as number };
    requireZero(bytes, 0x18b, 0x1a0);
  } else {
    requireZero(bytes, 0x188, 0x1a0);
  }
  const family = cpuid?.family ?? familyHint;
  requireZero(bytes, 0x1eb, 0x1ec);
  requireZero(bytes, 0x1ef, 0x1f0);
  requireZero(bytes, version >= 5 ? 0x208 : 0x1f8, SNP_SIGNATURE_OFFSET);

  const rAt = SNP_SIGNATURE_OFFSET;
  const sAt = rAt + SIG_COMPONENT_FIELD;
  requireZero(bytes, rAt + SIG_COMPONENT_BYTES, rAt + SIG_COMPONENT_FIELD);
  requireZero(bytes, sAt + SIG_COMPONENT_BYTES, sAt + SIG_COMPONENT_FIELD);
  requireZero(bytes, sAt + SIG_COMPONENT_FIELD, SNP_REPORT_SIZE);

  const report: SnpReport = {
    version,
    guestSvn: u32(0x04),
    policy: decodePolicy(u64(0x08), version),
    familyId: hex(bytes, 0x10, 16),
    imageId: hex(bytes, 0x20, 16),
    vmpl: u32(0x30),
    signatureAlgo: ECDSA_P384_SHA384,
    currentTcb: decodeTcb(u64(0x38), family),
    platformInfo: decodePlatformInfo(u64(0x40)),
    authorKeyEn: (keyInfo & 1) === 1,
    maskChipKey: (keyInfo & 2) === 2,
    signingKey,
    reportData: hex(bytes, 0x50, 64),
    measurement: hex(bytes, 0x90, 48),
    hostData: hex(bytes, 0xc0, 32),
    idKeyDigest: hex(bytes, 0xe0, 48),
    authorKeyDigest: hex(bytes, 0x110, 48),
    reportId: hex(bytes, 0x140, 32),
    reportIdMa: hex(bytes, 0x160, 32),
    reportedTcb: decodeTcb(u64(0x180), family),
    chipId: hex(bytes, 0x1a0, 64),
    committedTcb: decodeTcb(u64(0x1e0), family),
    current: firmware(bytes, 0x1e8),
    committed: firmware(bytes, 0x1ec),
    launchTcb: decodeTcb(u64(0x1f0), family),
    signature: { r: leToBeHex(bytes, rAt, SIG_COMPONENT_BYTES), s: leToBeHex(bytes, sAt, SIG_COMPONENT_BYTES) },
  };
  if (cpuid) report.cpuid = cpuid;
  if (version >= 5) {
    report.launchMitVector = u64(0x1f8).toString(16).padStart(16, '0');
    report.currentMitVector = u64(0x200).toString(16).padStart(16, '0');
  }
  return report;
}
