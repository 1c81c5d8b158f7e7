/** Shapes of a SEV-SNP attestation report and of what verification returns. */

export type SnpProduct = 'Milan' | 'Genoa' | 'Turin';
export type SnpSigningKey = 'VCEK' | 'VLEK';

/**
 * One TCB_VERSION, decoded. Milan and Genoa lay the u64 out as bootloader, TEE, 4 reserved
 * bytes, SNP, microcode; Turin (family 0x1A) as FMC, bootloader, TEE, SNP, 3 reserved bytes,
 * microcode. `fmc` is present only for the Turin layout.
 */
export interface TcbVersion {
  /** The raw u64, as hex with 16 digits, most significant first. */
  raw: string;
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  fmc?: number;
}

/** The guest policy the VM was launched with (u64 at 0x08). */
export interface GuestPolicy {
  raw: string;
  abiMinor: number;
  abiMajor: number;
  smt: boolean;
  migrateMa: boolean;
  debug: boolean;
  singleSocket: boolean;
  cxl: boolean;
  memAes256Xts: boolean;
  raplDisable: boolean;
  ciphertextHiding: boolean;
  pageSwapDisable: boolean;
}

export type GuestPolicyFlag = Exclude<keyof GuestPolicy, 'raw' | 'abiMinor' | 'abiMajor'>;

/** PLATFORM_INFO (u64 at 0x40): how the platform was configured when the report was made. */
export interface PlatformInfo {
  raw: string;
  smtEnabled: boolean;
  tsmeEnabled: boolean;
  eccEnabled: boolean;
  raplDisabled: boolean;
  ciphertextHidingEnabled: boolean;
  aliasCheckComplete: boolean;
}

export interface FirmwareVersion {
  major: number;
  minor: number;
  build: number;
}

/** All hex strings are lowercase; byte strings keep their report order. */
export interface SnpReport {
  version: 2 | 3 | 5;
  guestSvn: number;
  policy: GuestPolicy;
  familyId: string;
  imageId: string;
  vmpl: number;
  /** 1: ECDSA P-384 with SHA-384, the only algorithm defined. */
  signatureAlgo: 1;
  currentTcb: TcbVersion;
  platformInfo: PlatformInfo;
  authorKeyEn: boolean;
  maskChipKey: boolean;
  signingKey: SnpSigningKey;
  reportData: string;
  measurement: string;
  hostData: string;
  idKeyDigest: string;
  authorKeyDigest: string;
  reportId: string;
  reportIdMa: string;
  reportedTcb: TcbVersion;
  /** CPUID family, model and stepping (version 3 and later). */
  cpuid?: { family: number; model: number; stepping: number };
  chipId: string;
  committedTcb: TcbVersion;
  current: FirmwareVersion;
  committed: FirmwareVersion;
  launchTcb: TcbVersion;
  /** Version 5 and later. */
  launchMitVector?: string;
  currentMitVector?: string;
  /** Big-endian r and s, 48 bytes each, as hex. */
  signature: { r: string; s: string };
}

/** The AMD extensions of a VCEK or VLEK certificate. */
export interface AmdKeyExtensions {
  structVersion?: number;
  productName?: string;
  bootloader?: number;
  tee?: number;
  snp?: number;
  spl4?: number;
  spl5?: number;
  spl6?: number;
  spl7?: number;
  microcode?: number;
  fmc?: number;
  /** Chip id (VCEK only): 64 bytes before Turin, 8 bytes on Turin. */
  hwId?: string;
  /** The cloud provider a VLEK was issued to, e.g. "CN=...". */
  cspId?: string;
}

