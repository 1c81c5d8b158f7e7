/**
 * Building blocks of the policy schema, shared by the version 1 fields (schema.ts) and the
 * version 2 sections (schema-v2.ts). Each leaf carries a `description` phrased as what is
 * expected there; explain.ts shows it when a value does not fit. Every pattern is a fixed
 * literal of this file; nothing from a policy ever becomes a regular expression.
 */
import type { HashAlg } from '../verify/tpm-alg.js';

/** Banks in the order requirements are listed and quoted. */
export const BANK_ORDER: readonly HashAlg[] = ['sha1', 'sha256', 'sha384', 'sha512'];

export const DIGEST_HEX_LENGTH: Readonly<Record<HashAlg, number>> = {
  sha1: 40,
  sha256: 64,
  sha384: 96,
  sha512: 128,
};

export const BANK_LABEL: Readonly<Record<HashAlg, string>> = {
  sha1: 'SHA-1',
  sha256: 'SHA-256',
  sha384: 'SHA-384',
  sha512: 'SHA-512',
};

/** Bounds on every list, so a hostile file cannot make appraisal or matching expensive. */
export const MAX_RULES = 256;
export const MAX_LIST_ENTRIES = 1024;
export const MAX_ALLOWED_DIGESTS = 64;
export const MAX_SCOPES = 64;
export const MAX_PATH_LENGTH = 4096;
export const UID_MAX = 0xfffffffe; // (uid_t)-1 means "no uid" to the kernel

export type Schema = Record<string, unknown>;

export function hexDigest(hexLength: number, what: string): Schema {
  return {
    type: 'string',
    pattern: `^[0-9a-fA-F]{${hexLength}}$`,
    description: `a ${hexLength}-character hex ${what} digest (quote it, so YAML keeps it a string)`,
  };
}

/** A non-empty list of hex values of one length. */
export function hexList(hexLength: number, what: string, maxItems = MAX_ALLOWED_DIGESTS): Schema {
  const item = hexDigest(hexLength, what);
  return {
    type: 'array',
    description: `a non-empty list of ${hexLength}-character hex ${what} values`,
    minItems: 1,
    maxItems,
    items: { ...item, description: `a ${hexLength}-character hex ${what} value (quote it, so YAML keeps it a string)` },
  };
}

export function pcrBank(alg: HashAlg): Schema {
  const digest = hexDigest(DIGEST_HEX_LENGTH[alg], BANK_LABEL[alg]);
  return {
    type: 'object',
    description: `a map from PCR index (0 to 23) to the allowed ${BANK_LABEL[alg]} value or values`,
    minProperties: 1,
    propertyNames: {
      pattern: '^(?:[0-9]|1[0-9]|2[0-3])$',
      description: 'a PCR index from 0 to 23',
    },
    additionalProperties: {
      type: ['string', 'array'],
      description: `${digest['description'] as string}, or a list of them`,
      pattern: digest['pattern'],
      minItems: 1,
      maxItems: MAX_ALLOWED_DIGESTS,
      items: digest,
    },
  };
}

/** The `pcrs` mapping: bank name -> PCR index -> allowed value(s). */
export function pcrBanks(): Schema {
  return {
    type: 'object',
    description: 'a mapping from bank name (sha1, sha256, sha384, sha512) to PCR values',
    minProperties: 1,
    additionalProperties: false,
    properties: Object.fromEntries(BANK_ORDER.map((alg) => [alg, pcrBank(alg)])),
  };
}

/** Bank name -> a list of allowed digests of that bank's length. */
export function bankDigestLists(what: string, description: string): Schema {
  return {
    type: 'object',
    description,
    minProperties: 1,
    additionalProperties: false,
    properties: Object.fromEntries(
      BANK_ORDER.map((alg) => [alg, hexList(DIGEST_HEX_LENGTH[alg], `${BANK_LABEL[alg]} ${what}`, MAX_LIST_ENTRIES)]),
    ),
  };
}

export const duration: Schema = {
  type: 'string',
  pattern: '^[0-9]{1,9}(?:ms|s|m|h)$',
  description: 'a duration: an integer followed by ms, s, m or h, such as 500ms, 2s, 5m or 1h',
};

export const longDuration: Schema = {
  type: 'string',
  pattern: '^(?:[0-9]{1,9}(?:ms|s|m|h)|[0-9]{1,5}d)$',
  description: 'a duration: an integer followed by ms, s, m, h or d, such as 12h or 30d',
};

export const bankName: Schema = {
  enum: [...BANK_ORDER],
  description: 'a PCR bank: sha1, sha256, sha384 or sha512',
};

export function choice(values: readonly string[]): Schema {
  return { enum: [...values], description: values.length === 2 ? `${values[0]} or ${values[1]}` : `one of ${values.join(', ')}` };
}

export const bool: Schema = { type: 'boolean', description: 'true or false' };

export function absolutePath(what: string): Schema {
  return { type: 'string', pattern: '^/', maxLength: MAX_PATH_LENGTH, description: `an absolute ${what} starting with /` };
}

export function idList(what: string): Schema {
  return {
    type: 'array',
    description: `a non-empty list of ${what}s`,
    minItems: 1,
    maxItems: MAX_LIST_ENTRIES,
    items: { type: 'integer', minimum: 0, maximum: UID_MAX, description: `a numeric ${what} from 0 to ${UID_MAX}` },
  };
}

export function absolutePathList(what: string, plural: string, maxItems = MAX_LIST_ENTRIES): Schema {
  return {
    type: 'array',
    description: `a non-empty list of ${plural}`,
    minItems: 1,
    maxItems,
    items: absolutePath(what),
  };
}

export function integer(min: number, max: number, what: string): Schema {
  return { type: 'integer', minimum: min, maximum: max, description: `${what} from ${min} to ${max}` };
}
