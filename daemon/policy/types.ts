/**
 * The typed form of an attestd policy, as produced by the loader and consumed by the
 * appraiser, the lease manager and the offline auditor. Durations are milliseconds,
 * digests are raw bytes; nothing here still looks like YAML.
 */
import type { IntentConstraints } from './intent.js';
import type { LineageLimits } from './lineage.js';
import type { AuthorizationRequirement } from './authorization.js';
import type { HashAlg } from '../verify/tpm-alg.js';
import type { PcrBank } from '../verify/pcr.js';

export type { HashAlg, PcrBank };

/** One PCR the quote must cover, and the values it may hold (any one suffices). */
export interface PcrRequirement {
  alg: HashAlg;
  index: number;
  allowed: Buffer[];
}

/**
 * Selectors of a rule. Every selector that is present must match (AND); within one
 * selector any entry may match (OR). An absent selector places no constraint.
 */
export interface RuleMatch {
  uids?: number[];
  gids?: number[];
  exePaths?: string[];
  exeSha256?: Buffer[];
  cgroupPrefixes?: string[];
}

/**
 * The GPUs a rule's leases cover: every GPU present, or the ones named by uuid (lowercase,
 * "gpu-..." normalised to "GPU-" + lowercase hex) or by NVML index. Resolved against the
 * current GPU measurement by resolveRuleGpus (gpu-scope.ts).
 */
export type RuleGpus = 'all' | (string | number)[];

export interface Rule {
  name: string;
  match: RuleMatch;
  ttlMs: number;
  scopes: string[];
  /** Version 2: the GPUs a lease under this rule names; absent, the lease names none. */
  gpus?: RuleGpus;
  /** Version 2: what the rule requires of the execution intent (intent.ts); absent, nothing. */
  intent?: IntentConstraints;
  /** Version 2: how deep leases derived under this rule may go (lineage.ts); absent, none may be derived. */
  lineage?: LineageLimits;
  /** Version 2: the signed authorizations a grant needs (authorization.ts); absent, none. */
  authorization?: AuthorizationRequirement;
}

/** Values also accepted, until a deadline, while a planned update rolls out. */
export interface UpdateWindow {
  /** The deadline as written (RFC 3339 UTC), for reasons. */
  until: string;
  /** The deadline in milliseconds since the epoch; values pass only while now < untilMs. */
  untilMs: number;
  /** Extra allowed values; each PCR is also named by Policy.pcrs. */
  pcrs: PcrRequirement[];
}

/** Allowed digests of one kind, in one bank. */
export interface BankDigests {
  alg: HashAlg;
  allowed: Buffer[];
}

export interface BootPolicy {
  /** Absolute path of the TCG event log; read by the daemon, not by the appraiser. */
  eventLog: string;
  /** The bank the log is replayed and quoted in (requiredSelections adds the boot PCRs in it). */
  bank: HashAlg;
  secureBoot: 'required' | 'any';
  forbidTestKeys: boolean;
  /** Allowed EV_EFI_BOOT_SERVICES_APPLICATION digests; absent: not checked. */
  bootApplications?: BankDigests[];
  /** Substrings every kernel command line must contain / must not contain. */
  kernelCmdline?: { require: string[]; forbid: string[] };
  /** Event type names (EV_...) tolerated after the separator in PCRs 0-7, beyond the usual ones. */
  allowAfterSeparator: string[];
}

export interface ImaAllowEntry {
  /** Absent: the digest is allowed at any path. */
  path?: string;
  /** "sha256:<hex>", lowercase, as the IMA list writes file digests. */
  digest: string;
}

export interface ImaPolicy {
  /** Absolute path of the ASCII runtime measurement list; read by the daemon. */
  list: string;
  /** The bank PCR 10 is quoted and replayed in. */
  bank: HashAlg;
  allow: ImaAllowEntry[];
  /** Path prefixes not appraised ("/tmp/" covers what is below /tmp). */
  exclude: string[];
  allowUnknownPaths: boolean;
  allowViolations: boolean;
}

export interface CvmSnpPolicy {
  debug: 'forbidden' | 'allowed';
  minTcb?: { bootloader: number; tee: number; snp: number; microcode: number; fmc?: number };
  /** Allowed launch measurements, 96 lowercase hex characters each. */
  measurements?: string[];
  vmpl?: number;
  minGuestSvn?: number;
  /** 64 lowercase hex characters. */
  hostData?: string;
}

export interface CvmTdxPolicy {
  debug: 'forbidden' | 'allowed';
  /** Allowed MRTD values, 96 lowercase hex characters each. */
  mrtd?: string[];
  /** Allowed values per RTMR index 0-3. */
  rtmr?: Partial<Record<0 | 1 | 2 | 3, string[]>>;
  /** Accepted platform TCB statuses; absent: the TDX verifier's default set. */
  acceptedTcbStatus?: string[];
  /** Minimum TEE_TCB_SVN, 32 lowercase hex characters, compared byte by byte. */
  minTeeTcbSvn?: string;
}

export interface CvmPolicy {
  required: boolean;
  type: 'snp' | 'tdx' | 'any';
  /** Folder of AMD/Intel certificates, CRLs, TCB info and QE identity; read by the daemon. */
  collateral?: string;
  maxCollateralAgeMs?: number;
  snp?: CvmSnpPolicy;
  tdx?: CvmTdxPolicy;
}

export interface GpuPolicy {
  required: boolean;
  driverVersions?: string[];
  /** Product name -> allowed VBIOS versions (compared case-insensitively). */
  vbiosVersions?: Map<string, string[]>;
  /** Exactly these GPUs, by uuid ("GPU-" + lowercase hex). */
  pinnedUuids?: string[];
  ccMode: 'on' | 'off' | 'any';
  devTools: 'forbidden' | 'allowed';
  ecc: 'required' | 'any';
  /**
   * required: every GPU's own attestation report, over a nonce derived from the epoch binding,
   * must verify (SPDM signature, device chain to the NVIDIA root, nonce).
   */
  attestation: 'required' | 'off';
  /**
   * Signed RIMs to compare each GPU report's measurements with (attestation required): the
   * folder the daemon reads them from, and whether a GPU without a valid RIM for its driver
   * and its VBIOS version fails.
   */
  rims?: { dir: string; required: boolean };
  /** Kernel module name -> allowed SHA-256 digests of its file. */
  moduleDigests?: Map<string, Buffer[]>;
  /** Firmware file name (no folder) -> allowed SHA-256 digests. */
  firmwareDigests?: Map<string, Buffer[]>;
}

export interface Policy {
  version: 1 | 2;
  intervalMs: number;
  maxAgeMs: number;
  allowSha1: boolean;
  pcrs: PcrRequirement[];
  rules: Rule[];
  /** The sections below exist only in version 2 files; undefined for version 1. */
  updateWindow?: UpdateWindow;
  boot?: BootPolicy;
  ima?: ImaPolicy;
  cvm?: CvmPolicy;
  gpu?: GpuPolicy;
}

export interface LoadedPolicy {
  policy: Policy;
  file: string;
  text: string;
  /** SHA-256 of the exact file bytes; names this policy in epochs, tokens and the log. */
  digest: Buffer;
  /**
   * The reference-value files its rules name (intent artifacts.from), as read at load and folded
   * in (reference-values.ts); recorded with the policy so an auditor folds in the same digests.
   */
  references?: ReferenceFile[];
}

export interface ReferenceFile {
  /** As the policy names it. */
  file: string;
  bytes: Buffer;
}

/** One reason a policy was refused, located in the source file. Lines and columns are 1-based. */
export interface PolicyProblem {
  file: string;
  line: number;
  column: number;
  /** Field path such as `rules[0].lease.ttl`; empty for the document as a whole. */
  path: string;
  /** What was expected there. */
  message: string;
}
