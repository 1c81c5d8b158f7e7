/**
 * The JSON Schema (2020-12) of the policy, versions 1 and 2, applied to the plain value
 * read from YAML. Every object is closed (`additionalProperties: false`) so a misspelt
 * field is an error rather than a silently ignored line. Each leaf carries a
 * `description` phrased as what is expected there; the loader shows it when the value
 * does not fit. One schema covers both versions: the sections only version 2 may use are
 * refused in a version 1 file by checks-v2.ts, which says so in those words. Checks a
 * schema cannot express well (duration bounds, max_age >= interval, unique rule names,
 * SHA-1 opt-in, path normal form) live in checks.ts and checks-v2.ts.
 *
 * Every pattern below is a fixed literal of this file; nothing from a policy ever
 * becomes a regular expression.
 */
import { RULE_INTENT_SCHEMA } from './intent.js';
import { RULE_LINEAGE_SCHEMA } from './lineage.js';
import { RULE_AUTHORIZATION_SCHEMA } from './authorization.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import {
  MAX_RULES,
  MAX_SCOPES,
  absolutePathList,
  duration,
  hexDigest,
  idList,
  MAX_LIST_ENTRIES,
  pcrBanks,
} from './schema-parts.js';
import { BOOT_SCHEMA, CVM_SCHEMA, GPU_SCHEMA, IMA_SCHEMA, RULE_GPUS_SCHEMA, UPDATE_WINDOW_SCHEMA } from './schema-v2.js';

export {
  BANK_ORDER,
  DIGEST_HEX_LENGTH,
  MAX_ALLOWED_DIGESTS,
  MAX_LIST_ENTRIES,
  MAX_PATH_LENGTH,
  MAX_RULES,
  MAX_SCOPES,
  UID_MAX,
} from './schema-parts.js';

export const POLICY_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://attestd.invalid/schema/policy-v2.json',
  type: 'object',
  description: 'a policy mapping with version, attestation, pcrs and rules',
  additionalProperties: false,
  required: ['version', 'attestation', 'pcrs', 'rules'],
  properties: {
    version: { enum: [1, 2], description: 'the number 1 or 2' },
    allow_sha1: { type: 'boolean', description: 'true or false' },
    attestation: {
      type: 'object',
      description: 'a mapping with interval and max_age',
      additionalProperties: false,
      required: ['interval', 'max_age'],
      properties: { interval: duration, max_age: duration },
    },
    pcrs: pcrBanks(),
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
              gpus: RULE_GPUS_SCHEMA,
            },
          },
          intent: RULE_INTENT_SCHEMA,
          lineage: RULE_LINEAGE_SCHEMA,
          authorization: RULE_AUTHORIZATION_SCHEMA,
        },
      },
    },
    update_window: UPDATE_WINDOW_SCHEMA,
    boot: BOOT_SCHEMA,
    ima: IMA_SCHEMA,
    cvm: CVM_SCHEMA,
    gpu: GPU_SCHEMA,
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
