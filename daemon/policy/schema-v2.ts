/**
 * The sections version 2 adds: update_window, boot, ima, cvm, gpu, and a rule's
 * lease.gpus. Each object is closed, as in version 1. What a schema cannot say (a window
 * PCR that the top-level pcrs also names, a real calendar date, sections a version 1 file
 * may not use, mutually exclusive CVM sections) is checked in checks-v2.ts.
 */
import { EV } from '../verify/eventlog/event-types.js';
import { TCB_STATUSES } from '../verify/tdx/json-fields.js';
import {
  MAX_LIST_ENTRIES,
  absolutePath,
  absolutePathList,
  bankDigestLists,
  bankName,
  bool,
  choice,
  hexDigest,
  hexList,
  integer,
  longDuration,
  pcrBanks,
} from './schema-parts.js';
import type { Schema } from './schema-parts.js';

/** An allowlist can be long; the 1 MiB file cap bounds it first. */
export const MAX_IMA_ALLOW = 65_536;
export const MAX_GPUS = 64;
export const GPU_UUID_PATTERN = '^GPU-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
export const EVENT_TYPE_NAMES: readonly string[] = Object.keys(EV).map((name) => `EV_${name}`);

const printable = (what: string, max: number): Schema => ({
  type: 'string',
  pattern: `^[\\x20-\\x7e]{1,${max}}$`,
  description: `${what} of 1 to ${max} printable ASCII characters`,
});

const substrings = (what: string): Schema => ({
  type: 'array',
  description: `a non-empty list of ${what}`,
  minItems: 1,
  maxItems: 64,
  items: printable('a plain substring (not a pattern)', 1024),
});

export const UPDATE_WINDOW_SCHEMA: Schema = {
  type: 'object',
  description: 'a mapping with until and pcrs',
  additionalProperties: false,
  required: ['until', 'pcrs'],
  properties: {
    until: {
      type: 'string',
      pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$',
      description: 'an RFC 3339 UTC time such as "2027-01-31T00:00:00Z"',
    },
    pcrs: pcrBanks(),
  },
};

export const BOOT_SCHEMA: Schema = {
  type: 'object',
  description: 'a mapping with event_log and the checks to make on the measured boot',
  additionalProperties: false,
  required: ['event_log'],
  properties: {
    event_log: absolutePath('event log path'),
    bank: bankName,
    secure_boot: choice(['required', 'any']),
    forbid_test_keys: bool,
    boot_applications: bankDigestLists(
      'boot application',
      'a mapping from bank name (sha1, sha256, sha384, sha512) to allowed boot application digests',
    ),
    kernel_cmdline: {
      type: 'object',
      description: 'a mapping with require and/or forbid',
      minProperties: 1,
      additionalProperties: false,
      properties: { require: substrings('substrings every command line must contain'), forbid: substrings('substrings no command line may contain') },
    },
    allow_after_separator: {
      type: 'array',
      description: 'a non-empty list of event type names',
      minItems: 1,
      maxItems: EVENT_TYPE_NAMES.length,
      uniqueItems: true,
      items: { enum: [...EVENT_TYPE_NAMES], description: 'an event type name such as EV_EFI_HANDOFF_TABLES' },
    },
  },
};

const imaDigests = {
  sha1: hexDigest(40, 'SHA-1'),
  sha256: hexDigest(64, 'SHA-256'),
  sha384: hexDigest(96, 'SHA-384'),
  sha512: hexDigest(128, 'SHA-512'),
};

export const IMA_SCHEMA: Schema = {
  type: 'object',
  description: 'a mapping with list, allow, exclude and allow_unknown_paths',
  additionalProperties: false,
  required: ['list'],
  properties: {
    list: absolutePath('measurement list path'),
    bank: bankName,
    allow: {
      type: 'array',
      description: `a non-empty list of at most ${MAX_IMA_ALLOW} allowed files`,
      minItems: 1,
      maxItems: MAX_IMA_ALLOW,
      items: {
        type: 'object',
        description: 'a mapping with one file digest (sha1, sha256, sha384 or sha512) and optionally a path',
        minProperties: 1,
        additionalProperties: false,
        properties: { path: absolutePath('file path'), ...imaDigests },
      },
    },
    exclude: absolutePathList('path prefix', 'path prefixes'),
    allow_unknown_paths: bool,
    allow_violations: bool,
  },
};

const measurement384 = (what: string): Schema => hexList(96, what);

export const CVM_SCHEMA: Schema = {
  type: 'object',
  description: 'a mapping with required, type, collateral and the snp or tdx expectations',
  additionalProperties: false,
  properties: {
    required: bool,
    type: choice(['snp', 'tdx', 'any']),
    collateral: absolutePath('collateral folder'),
    max_collateral_age: longDuration,
    snp: {
      type: 'object',
      description: 'a mapping of SEV-SNP expectations',
      additionalProperties: false,
      properties: {
        debug: choice(['forbidden', 'allowed']),
        min_tcb: {
          type: 'object',
          description: 'a mapping with bootloader, tee, snp and microcode (and fmc on Turin)',
          additionalProperties: false,
          required: ['bootloader', 'tee', 'snp', 'microcode'],
          properties: {
            bootloader: integer(0, 255, 'an SVN'),
            tee: integer(0, 255, 'an SVN'),
            snp: integer(0, 255, 'an SVN'),
            microcode: integer(0, 255, 'an SVN'),
            fmc: integer(0, 255, 'an SVN'),
          },
        },
        measurements: measurement384('launch measurement'),
        vmpl: integer(0, 3, 'a VMPL'),
        min_guest_svn: integer(0, 0xffffffff, 'a guest SVN'),
        host_data: { ...hexDigest(64, 'HOST_DATA'), description: 'a 64-character hex HOST_DATA value (quote it)' },
      },
    },
    tdx: {
      type: 'object',
      description: 'a mapping of TDX expectations',
      additionalProperties: false,
      properties: {
        debug: choice(['forbidden', 'allowed']),
        mrtd: measurement384('MRTD'),
        rtmr: {
          type: 'object',
          description: 'a map from RTMR index (0 to 3) to allowed values',
          minProperties: 1,
          propertyNames: { pattern: '^[0-3]$', description: 'an RTMR index from 0 to 3' },
          additionalProperties: measurement384('RTMR'),
        },
        accepted_tcb_status: {
          type: 'array',
          description: 'a non-empty list of TCB statuses',
          minItems: 1,
          maxItems: TCB_STATUSES.length,
          uniqueItems: true,
          items: { enum: [...TCB_STATUSES], description: `a TCB status: ${TCB_STATUSES.join(', ')}` },
        },
        min_tee_tcb_svn: { type: 'string', pattern: '^[0-9a-fA-F]{32}$', description: 'a 32-character hex TEE_TCB_SVN (quote it)' },
      },
    },
  },
};

const versionString = (what: string): Schema => ({
  type: 'array',
  description: `a non-empty list of ${what}s`,
  minItems: 1,
  maxItems: MAX_LIST_ENTRIES,
  items: { type: 'string', pattern: '^[0-9A-Za-z][0-9A-Za-z.]{0,31}$', description: `a ${what} such as 550.54.15 (quote it)` },
});

const namedDigests = (keyPattern: string, keyWhat: string, what: string): Schema => ({
  type: 'object',
  description: `a map from ${keyWhat} to allowed SHA-256 digests`,
  minProperties: 1,
  maxProperties: MAX_LIST_ENTRIES,
  propertyNames: { pattern: keyPattern, description: keyWhat },
  additionalProperties: hexList(64, `SHA-256 ${what}`),
});

export const GPU_SCHEMA: Schema = {
  type: 'object',
  description: 'a mapping of GPU and NVIDIA driver expectations',
  additionalProperties: false,
  properties: {
    required: bool,
    driver_versions: versionString('driver version'),
    vbios_versions: {
      type: 'object',
      description: 'a map from GPU product name to allowed VBIOS versions',
      minProperties: 1,
      maxProperties: MAX_LIST_ENTRIES,
      propertyNames: { pattern: '^[\\x20-\\x7e]{1,96}$', description: 'a GPU product name of 1 to 96 printable ASCII characters' },
      additionalProperties: versionString('VBIOS version'),
    },
    pinned_uuids: {
      type: 'array',
      description: `a non-empty list of at most ${MAX_GPUS} GPU uuids`,
      minItems: 1,
      maxItems: MAX_GPUS,
      items: { type: 'string', pattern: GPU_UUID_PATTERN, description: 'a GPU uuid: GPU- then 8-4-4-4-12 hex digits' },
    },
    cc_mode: choice(['on', 'off', 'any']),
    dev_tools: choice(['forbidden', 'allowed']),
    ecc: choice(['required', 'any']),
    attestation: choice(['required', 'off']),
    rims: {
      type: 'object',
      description: 'a mapping with dir (the folder of signed RIMs) and required',
      additionalProperties: false,
      required: ['dir'],
      properties: { dir: absolutePath('RIM folder'), required: bool },
    },
    module_digests: namedDigests('^[A-Za-z0-9_-]{1,64}$', 'a kernel module name such as nvidia', 'module'),
    firmware_digests: namedDigests('^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,127}$', 'a firmware file name such as gsp_ga10x.bin', 'firmware'),
  },
};

export const RULE_GPUS_SCHEMA: Schema = {
  type: ['string', 'array'],
  description: `all, or a non-empty list of at most ${MAX_GPUS} GPU uuids and indices`,
  pattern: '^all$',
  minItems: 1,
  maxItems: MAX_GPUS,
  items: {
    type: ['string', 'integer'],
    pattern: GPU_UUID_PATTERN,
    minimum: 0,
    maximum: MAX_GPUS - 1,
    description: `a GPU uuid (GPU- then 8-4-4-4-12 hex digits) or a GPU index from 0 to ${MAX_GPUS - 1}`,
  },
};
