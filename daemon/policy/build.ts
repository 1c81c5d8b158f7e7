/**
 * Turns a plain value that has passed the schema and the semantic checks into the typed
 * Policy. It relies on those checks and does no validation of its own; call it only
 * through parsePolicy.
 */
import { parseDuration } from './duration.js';
import { bootPolicy, cvmPolicy, digests, gpuPolicy, imaPolicy, pcrRequirements, ruleGpus, updateWindow } from './build-v2.js';
import { intentConstraints } from './intent.js';
import { lineageLimits } from './lineage.js';
import { authorizationRequirement } from './authorization.js';
import type { Policy, Rule, RuleMatch } from './types.js';

type Obj = Record<string, unknown>;

function field<T>(o: Obj, key: string): T | undefined {
  return Object.prototype.hasOwnProperty.call(o, key) ? (o[key] as T) : undefined;
}

function ms(raw: unknown): number {
  const value = typeof raw === 'string' ? parseDuration(raw) : undefined;
  if (value === undefined) throw new TypeError('duration passed validation but does not parse');
  return value;
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
  const out: Rule = {
    name: String(field(raw, 'name')),
    match: ruleMatch(field<Obj>(raw, 'match') ?? {}),
    ttlMs: ms(field(lease, 'ttl')),
    scopes: [...(field<string[]>(lease, 'scopes') ?? [])],
  };
  const gpus = ruleGpus(field(lease, 'gpus'));
  if (gpus !== undefined) out.gpus = gpus;
  const intent = field<Obj>(raw, 'intent');
  if (intent !== undefined) out.intent = intentConstraints(intent);
  const lineage = field<Obj>(raw, 'lineage');
  if (lineage !== undefined) out.lineage = lineageLimits(lineage);
  const authorization = field<Obj>(raw, 'authorization');
  if (authorization !== undefined) out.authorization = authorizationRequirement(authorization);
  return out;
}

export function buildPolicy(value: Obj): Policy {
  const attestation = field<Obj>(value, 'attestation') ?? {};
  const policy: Policy = {
    version: field(value, 'version') === 2 ? 2 : 1,
    intervalMs: ms(field(attestation, 'interval')),
    maxAgeMs: ms(field(attestation, 'max_age')),
    allowSha1: field(value, 'allow_sha1') === true,
    pcrs: pcrRequirements(field<Obj>(value, 'pcrs') ?? {}),
    rules: (field<Obj[]>(value, 'rules') ?? []).map(rule),
  };
  // Version 1 files cannot hold these (checks-v2.ts), so they stay undefined there.
  const section = (key: string): Obj | undefined => field<Obj>(value, key);
  const window = section('update_window');
  if (window !== undefined) policy.updateWindow = updateWindow(window);
  const boot = section('boot');
  if (boot !== undefined) policy.boot = bootPolicy(boot);
  const ima = section('ima');
  if (ima !== undefined) policy.ima = imaPolicy(ima);
  const cvm = section('cvm');
  if (cvm !== undefined) policy.cvm = cvmPolicy(cvm);
  const gpu = section('gpu');
  if (gpu !== undefined) policy.gpu = gpuPolicy(gpu);
  return policy;
}
