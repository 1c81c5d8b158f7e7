/**
 * Appraisal of the IMA runtime measurement list against the policy's allowlist. Pure: the
 * entries come from parseImaList (template hashes checked); replaying them against the
 * quoted PCR 10 and checking boot_aggregate against PCRs 0-7 are the caller's job, before
 * this, since an unreplayed list proves nothing.
 */
import { BOOT_AGGREGATE_NAME, CompiledImaAllowlist } from '../verify/ima/allowlist.js';
import type { ImaEntry } from '../verify/ima/parse.js';
import type { Reason } from '../base/reason.js';
import type { ImaPolicy } from './types.js';

/** Enough to see what went wrong; the rest are counted in one more reason. */
export const MAX_IMA_REASONS = 100;

/** A policy is immutable once loaded, so its allowlist is compiled once per policy object. */
const compiledFor = new WeakMap<ImaPolicy, CompiledImaAllowlist>();

function compiled(ima: ImaPolicy): CompiledImaAllowlist {
  let c = compiledFor.get(ima);
  if (c === undefined) {
    c = new CompiledImaAllowlist({
      digests: ima.allow,
      excludes: ima.exclude,
      allowUnknownPaths: ima.allowUnknownPaths,
      allowViolations: ima.allowViolations,
    });
    compiledFor.set(ima, c);
  }
  return c;
}

function codeFor(entry: ImaEntry): string {
  if (!entry.pathIsUtf8) return 'IMA_PATH_NOT_UTF8';
  if (entry.violation) return 'IMA_VIOLATION';
  return 'IMA_NOT_ALLOWED';
}

/**
 * One reason per failing entry, in list order, at most MAX_IMA_REASONS and then
 * IMA_MORE_FAILURES counting the rest. An entry passes when its path is excluded, or its
 * digest is allowed for its path or for any path, or its path is unknown and
 * allow_unknown_paths is set. Measurement violations fail unless allow_violations is set
 * (IMA_VIOLATION); names that are not UTF-8 always fail (IMA_PATH_NOT_UTF8); any other
 * failure is IMA_NOT_ALLOWED, naming the line, path and digest. The boot_aggregate entry on
 * line 1 is skipped. An empty list gives no reason.
 */
export function appraiseIma(ima: ImaPolicy, entries: readonly ImaEntry[]): Reason[] {
  const allowlist = compiled(ima);
  const reasons: Reason[] = [];
  let failures = 0;
  for (const entry of entries) {
    if (entry.line === 1 && entry.pathIsUtf8 && entry.path === BOOT_AGGREGATE_NAME) continue;
    const why = allowlist.check(entry);
    if (why === undefined) continue;
    failures += 1;
    if (reasons.length < MAX_IMA_REASONS) reasons.push({ code: codeFor(entry), message: why });
  }
  if (failures > reasons.length) {
    reasons.push({ code: 'IMA_MORE_FAILURES', message: `and ${failures - reasons.length} more IMA entries fail the allowlist` });
  }
  return reasons;
}
