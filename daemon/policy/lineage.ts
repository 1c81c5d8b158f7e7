/**
 * A rule's lineage (docs/policy.md, "Lineage"): how deep the leases derived from a lease under
 * the rule may go. Pure: the schema of rules[].lineage and its typed form. Without it, or with
 * max_depth 0, a lease under the rule derives nothing.
 */
import type { Schema } from './schema-parts.js';

/** No lineage deeper than this, whatever a policy says: each level is a process and a lease to track. */
export const MAX_LINEAGE_DEPTH = 16;

export interface LineageLimits {
  /** The deepest derived lease: 1 allows children of an acquired lease, 2 grandchildren, and so on. */
  maxDepth: number;
}

export const RULE_LINEAGE_SCHEMA: Schema = {
  type: 'object',
  description: 'a mapping with max_depth',
  additionalProperties: false,
  required: ['max_depth'],
  properties: {
    max_depth: {
      type: 'integer',
      minimum: 0,
      maximum: MAX_LINEAGE_DEPTH,
      description: `an integer from 0 to ${MAX_LINEAGE_DEPTH}: how many generations of leases may be derived`,
    },
  },
};

/** The typed form of a rules[].lineage that passed the schema. */
export function lineageLimits(raw: Record<string, unknown>): LineageLimits {
  return { maxDepth: Number(raw.max_depth) };
}

/** The rule's depth limit; 0 (derivation refused) when it has no lineage section. */
export function maxDepthOf(rule: { lineage?: LineageLimits }): number {
  return rule.lineage?.maxDepth ?? 0;
}
