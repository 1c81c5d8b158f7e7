/**
 * The SEV-SNP ATTESTATION_REPORT (SEV-SNP firmware ABI, "ATTESTATION_REPORT Structure"):
 * 1184 bytes, little-endian, versions 2, 3 and 5. Parsing checks the shape only (size,
 * version, algorithm, reserved bytes); it proves nothing about who made the report. Use
 * verifySnpReport for that: it checks the signature before it believes any field here.
 */
import { AttestdError } from '../../base/errors.js';
import { ByteReader } from '../bytes/reader.js';
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

const PREFIX = 'SEV-SNP report: ';

function malformed(why: string): never {
  throw new AttestdError('CVM_REPORT_MALFORMED', PREFIX + why);
}

const where = (): string => PREFIX;

/** `n` reserved bytes, which must be zero. */
function reserved(r: ByteReader, n: number): void {
  const from = r.offset;
  if (!r.zeros(n)) r.fail(`reserved bytes 0x${from.toString(16)}..0x${(from + n - 1).toString(16)} are not zero`);
}

/** A little-endian field as big-endian hex of its significant bytes (copied: the input is never changed). */
function leToBeHex(b: Buffer): string {
  return Buffer.from(b).reverse().toString('hex');
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

/** Version and signing algorithm only: enough to decide how to verify, before anything is trusted. */
export function snpReportHeader(bytes: Uint8Array): { version: 2 | 3 | 5 } {
  if (!(bytes instanceof Uint8Array)) malformed('not a byte array');
  if (bytes.length !== SNP_REPORT_SIZE) malformed(`${bytes.length} bytes, expected ${SNP_REPORT_SIZE}`);
  const r = new ByteReader(bytes, 'le', 'CVM_REPORT_MALFORMED', where);
  const version = r.u32('VERSION');
  if (!SUPPORTED_VERSIONS.has(version)) malformed(`unsupported report version ${version}`);
  r.skip(0x30, 'GUEST_SVN..VMPL');
  const algo = r.u32('SIGNATURE_ALGO');
  if (algo !== ECDSA_P384_SHA384) malformed(`unsupported signature algorithm ${algo}`);
  return { version: version as 2 | 3 | 5 };
}

/**
 * The kind of key the report says signed it (SIGNING_KEY, bits 4:2 of the u32 at 0x48),
 * read before anything is verified: only to pick the chain to verify with (ASK for a VCEK,
 * ASVK for a VLEK). verifySnpReport checks the field again once the signature holds.
 * Undefined for "none" and reserved values.
 */
export function snpReportSigningKeyHint(bytes: Uint8Array): SnpSigningKey | undefined {
  if (!(bytes instanceof Uint8Array) || bytes.length !== SNP_REPORT_SIZE) return undefined;
  const keyInfo = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readUInt32LE(0x48);
  return SIGNING_KEYS[(keyInfo >>> 2) & 0x7];
}

/**
 * Decodes a report. `familyHint` sets the TCB layout for version 2 reports, which do not
 * carry their CPU family; without it they are read in the Milan/Genoa layout. The report is
 * read in order; every reserved byte and bit must be zero.
 */
export function parseSnpReport(bytes: Uint8Array, familyHint?: number): SnpReport {
  const { version } = snpReportHeader(bytes);
  const r = new ByteReader(bytes, 'le', 'CVM_REPORT_MALFORMED', where);
  const guest = readGuest(r);
  const digests = readDigests(r);
  const platform = readPlatform(r, version);
  const signature = readSignature(r);
  r.end('the report');

  const family = platform.cpuid?.family ?? familyHint;
  const report: SnpReport = {
    version,
    guestSvn: guest.guestSvn,
    policy: decodePolicy(guest.policy, version),
    familyId: guest.familyId,
    imageId: guest.imageId,
    vmpl: guest.vmpl,
    signatureAlgo: ECDSA_P384_SHA384,
    currentTcb: decodeTcb(guest.currentTcb, family),
    platformInfo: decodePlatformInfo(guest.platformInfo),
    authorKeyEn: guest.authorKeyEn,
    maskChipKey: guest.maskChipKey,
    signingKey: guest.signingKey,
    reportData: digests.reportData,
    measurement: digests.measurement,
    hostData: digests.hostData,
    idKeyDigest: digests.idKeyDigest,
    authorKeyDigest: digests.authorKeyDigest,
    reportId: digests.reportId,
    reportIdMa: digests.reportIdMa,
    reportedTcb: decodeTcb(platform.reportedTcb, family),
    chipId: platform.chipId,
    committedTcb: decodeTcb(platform.committedTcb, family),
    current: platform.current,
    committed: platform.committed,
    launchTcb: decodeTcb(platform.launchTcb, family),
    signature,
  };
  if (platform.cpuid) report.cpuid = platform.cpuid;
  if (platform.mitigations) {
    report.launchMitVector = platform.mitigations.launch;
    report.currentMitVector = platform.mitigations.current;
  }
  return report;
}

/** 0x000..0x050: who the guest is, the TCB it runs on, and which key signed. */
function readGuest(r: ByteReader) {
  r.skip(4, 'VERSION'); // read by snpReportHeader
  const guestSvn = r.u32('GUEST_SVN');
  const policy = r.u64('POLICY');
  const familyId = r.hex(16, 'FAMILY_ID');
  const imageId = r.hex(16, 'IMAGE_ID');
  const vmpl = r.u32('VMPL');
  r.skip(4, 'SIGNATURE_ALGO'); // checked by snpReportHeader
  const currentTcb = r.u64('CURRENT_TCB');
  const platformInfo = r.u64('PLATFORM_INFO');
  const keyInfo = r.u32('key information');
  if (keyInfo >>> 5 !== 0) malformed('reserved bits at 0x48 are set');
  const keySel = (keyInfo >>> 2) & 0x7;
  if (keySel === SIGNING_KEY_NONE) malformed('the report is not signed (SIGNING_KEY = 7)');
  const signingKey = SIGNING_KEYS[keySel] ?? malformed(`reserved SIGNING_KEY value ${keySel}`);
  reserved(r, 4);
  return {
    guestSvn, policy, familyId, imageId, vmpl, currentTcb, platformInfo,
    authorKeyEn: (keyInfo & 1) === 1, maskChipKey: (keyInfo & 2) === 2, signingKey,
  };
}

/** 0x050..0x180: the guest's report data, launch measurement and the digests bound to it. */
function readDigests(r: ByteReader) {
  return {
    reportData: r.hex(64, 'REPORT_DATA'),
    measurement: r.hex(48, 'MEASUREMENT'),
    hostData: r.hex(32, 'HOST_DATA'),
    idKeyDigest: r.hex(48, 'ID_KEY_DIGEST'),
    authorKeyDigest: r.hex(48, 'AUTHOR_KEY_DIGEST'),
    reportId: r.hex(32, 'REPORT_ID'),
    reportIdMa: r.hex(32, 'REPORT_ID_MA'),
  };
}

/** 0x180..0x2A0: the platform's TCBs, CPU, chip and firmware; what each version adds. */
function readPlatform(r: ByteReader, version: number) {
  const reportedTcb = r.u64('REPORTED_TCB');
  let cpuid: SnpReport['cpuid'];
  if (version >= 3) {
    cpuid = { family: r.u8('CPUID_FAM_ID'), model: r.u8('CPUID_MOD_ID'), stepping: r.u8('CPUID_STEP') };
    reserved(r, 0x1a0 - 0x18b);
  } else {
    reserved(r, 0x1a0 - 0x188);
  }
  const chipId = r.hex(64, 'CHIP_ID');
  const committedTcb = r.u64('COMMITTED_TCB');
  const current = firmware(r);
  const committed = firmware(r);
  const launchTcb = r.u64('LAUNCH_TCB');
  let mitigations: { launch: string; current: string } | undefined;
  if (version >= 5) {
    mitigations = { launch: mitigationVector(r, 'LAUNCH_MIT_VECTOR'), current: mitigationVector(r, 'CURRENT_MIT_VECTOR') };
  }
  reserved(r, SNP_SIGNATURE_OFFSET - r.offset);
  return { reportedTcb, cpuid, chipId, committedTcb, current, committed, launchTcb, mitigations };
}

/** A firmware build, minor and major, then a reserved byte. */
function firmware(r: ByteReader): FirmwareVersion {
  const version = { build: r.u8('build'), minor: r.u8('minor'), major: r.u8('major') };
  reserved(r, 1);
  return version;
}

function mitigationVector(r: ByteReader, what: string): string {
  return r.u64(what).toString(16).padStart(16, '0');
}

/** 0x2A0..0x4A0: r and s, each in the low 48 bytes of a 72-byte field, then reserved bytes. */
function readSignature(r: ByteReader): SnpReport['signature'] {
  const rs = leToBeHex(r.bytes(SIG_COMPONENT_BYTES, 'signature R'));
  reserved(r, SIG_COMPONENT_FIELD - SIG_COMPONENT_BYTES);
  const ss = leToBeHex(r.bytes(SIG_COMPONENT_BYTES, 'signature S'));
  reserved(r, SIG_COMPONENT_FIELD - SIG_COMPONENT_BYTES);
  reserved(r, SNP_REPORT_SIZE - r.offset);
  return { r: rs, s: ss };
}
