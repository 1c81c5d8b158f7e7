/**
 * Turns a plain value that has passed the schema and the semantic checks into the typed
 * Policy. It relies on those checks and does no validation of its own; call it only
 * through parsePolicy.
 */
import type { HashAlg } from '../verify/tpm-alg.js';
import { parseDuration } from './duration.js';
import { BANK_ORDER } from './schema.js';
import type { PcrRequirement, Policy, Rule, RuleMatch } from './types.js';

type Obj = Record<string, unknown>;

function field<T>(o: Obj, key: string): T | undefined {
  return Object.prototype.hasOwnProperty.call(o, key) ? (o[key] as T) : undefined;
}

function ms(raw: unknown): number {
  const value = typeof raw === 'string' ? parseDuration(raw) : undefined;
  if (value === undefined) throw new TypeError('duration passed validation but does not parse');
  return value;
}

/** Hex is accepted in either case; identical digests are kept once, in file order. */
function digests(raw: readonly string[]): Buffer[] {
  const seen = new Set<string>();
  const out: Buffer[] = [];
  for (const hex of raw) {
    const lower = hex.toLowerCase();
    if (seen.has(lower)) continue;
    seen.add(lower);
    out.push(Buffer.from(lower, 'hex'));
  }
  return out;
}

function pcrRequirements(pcrs: Obj): PcrRequirement[] {
  const out: PcrRequirement[] = [];
  for (const alg of BANK_ORDER) {
    const bank = field<Obj>(pcrs, alg);
    if (bank === undefined) continue;
    const indices = Object.keys(bank)
      .map(Number)
      .sort((a, b) => a - b);
    for (const index of indices) {
      const entry = bank[String(index)] as string | string[];
      out.push({ alg: alg satisfies HashAlg, index, allowed: digests(typeof entry === 'string' ? [entry] : entry) });
    }
  }
  return out;
}

function ruleMatch(match: Obj): RuleMatch {
  const out: RuleMatch = {};
  const uids = field<number[]>(match, 'uids');
  const gids = field<number[]>(match, 'gids');
  const exePaths = field<string[]>(match, 'exe_paths');
  const exeSha256 = field<string[]>(match, 'exe_sha256');
  const cgroupPrefixes = field<string[]>(match, 'cgroup_prefixes');
  if (uids !== undefined) out.uids = [...uids];
  if (gids !== undefined) out.gids = [...gids];
  if (exePaths !== undefined) out.exePaths = [...exePaths];
  if (exeSha256 !== undefined) out.exeSha256 = digests(exeSha256);
  if (cgroupPrefixes !== undefined) out.cgroupPrefixes = [...cgroupPrefixes];
  return out;
}

function rule(raw: Obj): Rule {
  const lease = field<Obj>(raw, 'lease') ?? {};
  return {
    name: String(field(raw, 'name')),
    match: ruleMatch(field<Obj>(raw, 'match') ?? {}),
    ttlMs: ms(field(lease, 'ttl')),
    scopes: [...(field<string[]>(lease, 'scopes') ?? [])],
  };
}

export function buildPolicy(value: Obj): Policy {
  const attestation = field<Obj>(value, 'attestation') ?? {};
  return {
    version: 1,
    intervalMs: ms(field(attestation, 'interval')),
    maxAgeMs: ms(field(attestation, 'max_age')),
    allowSha1: field(value, 'allow_sha1') === true,
    pcrs: pcrRequirements(field<Obj>(value, 'pcrs') ?? {}),
    rules: (field<Obj[]>(value, 'rules') ?? []).map(rule),
  };
}
