/**
 * A rule's constraints on execution intent (docs/policy.md, "Execution intent"): the schema of
 * rules[].intent, its typed form, and the one check the lease manager runs at grant and the
 * offline verifier re-runs on every recorded grant and renewal. Pure.
 */
import { AttestdError } from '../base/errors.js';
import type { ResolvedIntent } from '../verify/intent/codec.js';
import { hexList } from './schema-parts.js';
import type { Schema } from './schema-parts.js';

export const INTENT_FIELDS = ['artifacts', 'image_digest', 'job_id'] as const;
export type IntentField = (typeof INTENT_FIELDS)[number];

export interface IntentConstraints {
  /** Fields the request must give (non-empty). */
  require: IntentField[];
  /** Every artifact hashed by the daemon itself; a declared digest is refused. */
  measuredOnly: boolean;
  /** Allowed artifact digests (lowercase hex): `allow`, and once folded in, those of `from`; absent, any. */
  artifacts?: string[];
  /** The reference-value file named by artifacts.from, as written; its digests are folded in at load (reference-values.ts). */
  artifactsFrom?: string;
  /** Allowed image digests ("sha256:" + lowercase hex); absent, any. */
  images?: string[];
}

export const RULE_INTENT_SCHEMA: Schema = {
  type: 'object',
  description: 'a mapping with any of require, measured_only, artifacts and images',
  additionalProperties: false,
  properties: {
    require: {
      type: 'array',
      description: 'a list of intent fields: artifacts, image_digest, job_id',
      maxItems: INTENT_FIELDS.length,
      uniqueItems: true,
      items: { enum: [...INTENT_FIELDS], description: 'one of artifacts, image_digest, job_id' },
    },
    measured_only: { type: 'boolean', description: 'true or false' },
    artifacts: {
      type: 'object', description: 'a mapping with allow, from or both', additionalProperties: false, minProperties: 1,
      properties: {
        allow: hexList(64, 'SHA-256'),
        from: { type: 'string', pattern: '^[\\x21-\\x7e]{1,1024}$', description: 'a reference-value file (sha256sum format), relative to the policy file' },
      },
    },
    images: {
      type: 'object', description: 'a mapping with allow', additionalProperties: false, required: ['allow'],
      properties: { allow: hexList(64, 'SHA-256 image') },
    },
  },
};

type Obj = Record<string, unknown>;
const own = (o: Obj, k: string): unknown => (Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined);

/** The typed constraints of a rule's validated `intent` mapping. */
export function intentConstraints(raw: Obj): IntentConstraints {
  const out: IntentConstraints = {
    require: [...((own(raw, 'require') as IntentField[] | undefined) ?? [])],
    measuredOnly: own(raw, 'measured_only') === true,
  };
  const artifacts = own(raw, 'artifacts') as Obj | undefined;
  if (artifacts) out.artifacts = ((own(artifacts, 'allow') as string[] | undefined) ?? []).map((h) => h.toLowerCase());
  const from = artifacts && (own(artifacts, 'from') as string | undefined);
  if (from !== undefined) out.artifactsFrom = from;
  const images = own(raw, 'images') as Obj | undefined;
  if (images) out.images = (own(images, 'allow') as string[]).map((h) => `sha256:${h.toLowerCase()}`);
  return out;
}

/**
 * Refuses an intent the constraints do not allow, with the first failure's code: a required
 * field missing, a declared artifact under measured_only, an artifact or image not allowed.
 * Without constraints, anything (and no intent at all) is allowed.
 */
export function checkIntent(c: IntentConstraints | undefined, intent: ResolvedIntent | undefined): void {
  if (!c) return;
  const given: Record<IntentField, boolean> = {
    artifacts: (intent?.artifacts.length ?? 0) > 0,
    image_digest: (intent?.imageDigest ?? '') !== '',
    job_id: (intent?.jobId ?? '') !== '',
  };
  const missing = c.require.find((f) => !given[f]);
  if (missing) throw new AttestdError('INTENT_REQUIRED', `the rule requires ${missing} in the intent`);
  for (const a of intent?.artifacts ?? []) {
    if (c.measuredOnly && !a.measured) throw new AttestdError('INTENT_NOT_MEASURED', `artifact "${a.name}" is declared, not measured`);
    if (c.artifacts && !c.artifacts.includes(a.sha256.toString('hex'))) {
      throw new AttestdError('INTENT_ARTIFACT_NOT_ALLOWED', `artifact "${a.name}" (sha256 ${a.sha256.toString('hex')}) is not allowed`);
    }
  }
  const image = intent?.imageDigest ?? '';
  if (c.images && image !== '' && !c.images.includes(image)) {
    throw new AttestdError('INTENT_IMAGE_NOT_ALLOWED', `image ${image} is not allowed`);
  }
}
