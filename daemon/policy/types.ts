/**
 * The typed form of an attestd policy, as produced by the loader and consumed by the
 * appraiser, the lease manager and the offline auditor. Durations are milliseconds,
 * digests are raw bytes; nothing here still looks like YAML.
 */
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

export interface Rule {
  name: string;
  match: RuleMatch;
  ttlMs: number;
  scopes: string[];
}

export interface Policy {
  version: 1;
  intervalMs: number;
  maxAgeMs: number;
  allowSha1: boolean;
  pcrs: PcrRequirement[];
  rules: Rule[];
}

export interface LoadedPolicy {
  policy: Policy;
  file: string;
  text: string;
  /** SHA-256 of the exact file bytes; names this policy in epochs, tokens and the log. */
  digest: Buffer;
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
