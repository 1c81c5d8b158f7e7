/**
 * The JSON Schema (2020-12) of policy v1, applied to the plain value read from YAML.
 * Every object is closed (`additionalProperties: false`) so a misspelt field is an error
 * rather than a silently ignored line. Each leaf carries a `description` phrased as what
 * is expected there; the loader shows it when the value does not fit. Checks a schema
 * cannot express well (duration bounds, max_age >= interval, unique rule names, SHA-1
 * opt-in, path normal form) live in checks.ts.
 *
 * Every pattern below is a fixed literal of this file; nothing from a policy ever
 * becomes a regular expression.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import type { HashAlg } from '../verify/tpm-alg.js';

/** Banks in the order requirements are listed and quoted. */
export const BANK_ORDER: readonly HashAlg[] = ['sha1', 'sha256', 'sha384', 'sha512'];

export const DIGEST_HEX_LENGTH: Readonly<Record<HashAlg, number>> = {
  sha1: 40,
  sha256: 64,
  sha384: 96,
  sha512: 128,
};

const BANK_LABEL: Readonly<Record<HashAlg, string>> = {
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

function hexDigest(hexLength: number, what: string): Record<string, unknown> {
  return {
    type: 'string',
    pattern: `^[0-9a-fA-F]{${hexLength}}$`,
    description: `a ${hexLength}-character hex ${what} digest (quote it, so YAML keeps it a string)`,
  };
}

function pcrBank(alg: HashAlg): Record<string, unknown> {
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

const duration = {
  type: 'string',
  pattern: '^[0-9]{1,9}(?:ms|s|m|h)$',
  description: 'a duration: an integer followed by ms, s, m or h, such as 500ms, 2s, 5m or 1h',
};

function idList(what: string): Record<string, unknown> {
  return {
    type: 'array',
    description: `a non-empty list of ${what}s`,
    minItems: 1,
    maxItems: MAX_LIST_ENTRIES,
    items: { type: 'integer', minimum: 0, maximum: UID_MAX, description: `a numeric ${what} from 0 to ${UID_MAX}` },
  };
}

function absolutePathList(what: string, plural: string): Record<string, unknown> {
  return {
    type: 'array',
    description: `a non-empty list of ${plural}`,
    minItems: 1,
    maxItems: MAX_LIST_ENTRIES,
    items: {
      type: 'string',
      pattern: '^/',
      maxLength: MAX_PATH_LENGTH,
      description: `an absolute ${what} starting with /`,
    },
  };
}

export const POLICY_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://attestd.invalid/schema/policy-v1.json',
  type: 'object',
  description: 'a policy mapping with version, attestation, pcrs and rules',
  additionalProperties: false,
  required: ['version', 'attestation', 'pcrs', 'rules'],
  properties: {
    version: { const: 1, description: 'the number 1' },
    allow_sha1: { type: 'boolean', description: 'true or false' },
    attestation: {
      type: 'object',
      description: 'a mapping with interval and max_age',
      additionalProperties: false,
      required: ['interval', 'max_age'],
      properties: { interval: duration, max_age: duration },
    },
    pcrs: {
      type: 'object',
      description: 'a mapping from bank name (sha1, sha256, sha384, sha512) to PCR values',
      minProperties: 1,
      additionalProperties: false,
      properties: Object.fromEntries(BANK_ORDER.map((alg) => [alg, pcrBank(alg)])),
    },
    rules: {
      type: 'array',
      description: `a non-empty list of at most ${MAX_RULES} rules`,
      minItems: 1,
      maxItems: MAX_RULES,
      items: {
        type: 'object',
        description: 'a rule mapping with name, match and lease',
        additionalProperties: false,
        required: ['name', 'match', 'lease'],
        properties: {
          name: {
            type: 'string',
            pattern: '^[a-z0-9_-]{1,64}$',
            description: 'a rule name of 1 to 64 characters from a-z, 0-9, _ and -',
          },
          match: {
            type: 'object',
            description: 'at least one selector: uids, gids, exe_paths, exe_sha256 or cgroup_prefixes',
            minProperties: 1,
            additionalProperties: false,
            properties: {
              uids: idList('uid'),
              gids: idList('gid'),
              exe_paths: absolutePathList('executable path', 'executable paths'),
              exe_sha256: {
                type: 'array',
                description: 'a non-empty list of SHA-256 digests',
                minItems: 1,
                maxItems: MAX_LIST_ENTRIES,
                items: hexDigest(64, 'SHA-256'),
              },
              cgroup_prefixes: absolutePathList('cgroup path prefix', 'cgroup path prefixes'),
            },
          },
          lease: {
            type: 'object',
            description: 'a mapping with ttl and scopes',
            additionalProperties: false,
            required: ['ttl', 'scopes'],
            properties: {
              ttl: duration,
              scopes: {
                type: 'array',
                description: `a non-empty list of at most ${MAX_SCOPES} scope labels`,
                minItems: 1,
                maxItems: MAX_SCOPES,
                items: {
                  type: 'string',
                  pattern: '^[\\x20-\\x7e]{1,128}$',
                  description: 'a scope label of 1 to 128 printable ASCII characters',
                },
              },
            },
          },
        },
      },
    },
  },
} as const;

let compiled: ValidateFunction | undefined;

/** Ajv compiles the schema into code once; the first policy load pays for it. */
function validator(): ValidateFunction {
  if (compiled === undefined) {
    const ajv = new Ajv2020({
      allErrors: true,
      coerceTypes: false,
      useDefaults: false,
      removeAdditional: false,
      strict: true,
      allowUnionTypes: true,
      ownProperties: true,
      verbose: true,
      unicodeRegExp: true,
    });
    compiled = ajv.compile(POLICY_SCHEMA);
  }
  return compiled;
}

/** Schema violations of a plain value; empty when it fits. */
export function schemaErrors(value: unknown): ErrorObject[] {
  const validate = validator();
  if (validate(value)) return [];
  return [...(validate.errors ?? [])];
}
