/**
 * Checks the schema cannot state: duration bounds, max_age against interval, the SHA-1
 * opt-in, unique rule names and the normal form of paths. They run on the plain value
 * beside the schema (not after it), so one pass reports every problem; each check looks
 * only at parts whose type is already right and leaves type errors to the schema.
 */
import type { Located, Segment, SourceTree } from './document.js';
import { INTERVAL_BOUNDS, MAX_AGE_BOUNDS, TTL_BOUNDS, checkBounds, formatDuration, parseDuration } from './duration.js';
import type { DurationBounds } from './duration.js';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function own(o: Obj, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}

function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i += 1) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/**
 * The kernel reports executables and cgroups by canonical path, so `/usr/bin/../bin/x`
 * or `/a//b` in a policy could never match; say so instead of silently never matching.
 * A trailing `/` is meaningful only for cgroup prefixes.
 */
export function pathFormProblem(path: string, trailingSlashAllowed: boolean): string | undefined {
  if (path.length === 0 || path.charCodeAt(0) !== 0x2f) return undefined; // schema's job
  if (hasControlChar(path)) return 'expected a path without control characters';
  const parts = path.split('/');
  for (let i = 1; i < parts.length; i += 1) {
    const part = parts[i];
    const last = i === parts.length - 1;
    if (part === '' && !(last && trailingSlashAllowed)) {
      return last ? 'expected a path without a trailing /' : 'expected a path without empty segments (//)';
    }
    if (part === '.' || part === '..') return 'expected a normalized path without . or .. segments';
  }
  return undefined;
}

/** Where a check puts a problem: at a pointer into the document, or at its key. */
type Report = (at: Segment[], message: string, onKey?: boolean) => void;

/**
 * The problems the file comment names, in this order: attestation durations, the sha1 PCR
 * bank, then rule by rule (name, ttl, exe_paths, cgroup_prefixes).
 */
export function semanticProblems(value: unknown, tree: SourceTree): Located[] {
  const out: Located[] = [];
  const report: Report = (at, message, onKey = false) => {
    out.push({ ...tree.locate(at, onKey), message });
  };
  if (!isObj(value)) return out;
  const attestation = own(value, 'attestation');
  if (isObj(attestation)) attestationDurations(attestation, report);
  const pcrs = own(value, 'pcrs');
  if (isObj(pcrs) && own(pcrs, 'sha1') !== undefined && own(value, 'allow_sha1') !== true) {
    report(
      ['pcrs', 'sha1'],
      'expected no sha1 bank: SHA-1 PCR values are accepted only when the policy sets allow_sha1: true at the top level',
      true,
    );
  }
  const rules = own(value, 'rules');
  if (Array.isArray(rules)) {
    const firstByName = new Map<string, number>();
    rules.forEach((rule, i) => {
      if (isObj(rule)) ruleProblems(rule, i, firstByName, report);
    });
  }
  return out;
}

/** Milliseconds of a well-formed duration within bounds; one out of bounds is reported. */
function boundedDuration(report: Report, at: Segment[], raw: unknown, bounds: DurationBounds): number | undefined {
  if (typeof raw !== 'string') return undefined;
  const ms = parseDuration(raw);
  if (ms === undefined) return undefined;
  const problem = checkBounds(ms, bounds);
  if (problem !== undefined) {
    report(at, problem);
    return undefined;
  }
  return ms;
}

/** interval and max_age within their bounds, and max_age no shorter than interval. */
function attestationDurations(attestation: Obj, report: Report): void {
  const interval = boundedDuration(report, ['attestation', 'interval'], own(attestation, 'interval'), INTERVAL_BOUNDS);
  const maxAge = boundedDuration(report, ['attestation', 'max_age'], own(attestation, 'max_age'), MAX_AGE_BOUNDS);
  if (interval !== undefined && maxAge !== undefined && maxAge < interval) {
    report(
      ['attestation', 'max_age'],
      `expected a max_age of at least the interval (${formatDuration(interval)}), found ${formatDuration(maxAge)}`,
    );
  }
}

/**
 * Rule `i`: a name no earlier rule has (`firstByName` remembers where each was first used),
 * a lease ttl within bounds, and match paths in normal form (a cgroup prefix may end in /).
 */
function ruleProblems(rule: Obj, i: number, firstByName: Map<string, number>, report: Report): void {
  const name = own(rule, 'name');
  if (typeof name === 'string') {
    const first = firstByName.get(name);
    if (first === undefined) firstByName.set(name, i);
    else report(['rules', i, 'name'], `expected a unique rule name; ${JSON.stringify(name)} is already used by rules[${first}]`);
  }
  const lease = own(rule, 'lease');
  if (isObj(lease)) boundedDuration(report, ['rules', i, 'lease', 'ttl'], own(lease, 'ttl'), TTL_BOUNDS);
  const match = own(rule, 'match');
  if (!isObj(match)) return;
  matchPaths(match, 'exe_paths', ['rules', i, 'match'], false, report);
  matchPaths(match, 'cgroup_prefixes', ['rules', i, 'match'], true, report);
}

/** Each string in the list `match[key]` a path in normal form. */
function matchPaths(match: Obj, key: string, at: Segment[], trailingSlashAllowed: boolean, report: Report): void {
  const list = own(match, key);
  if (!Array.isArray(list)) return;
  list.forEach((p, j) => {
    if (typeof p !== 'string') return;
    const problem = pathFormProblem(p, trailingSlashAllowed);
    if (problem !== undefined) report([...at, key, j], problem);
  });
}
