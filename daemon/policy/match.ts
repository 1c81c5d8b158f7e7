/**
 * Which policy rule, if any, covers a calling workload. Pure: the identity comes from the
 * kernel via the api layer; this file only compares. A rule matches when every selector it
 * gives matches (AND) and, within a selector, any listed entry matches (OR). A rule that
 * gives no selector at all matches nothing, so a hand-built policy fails closed.
 */
import type { WorkloadIdentity } from '../base/workload-identity.js';
import type { Policy, Rule, RuleMatch } from './types.js';


/**
 * Prefix match on cgroup paths that respects path boundaries: `/a/b` covers `/a/b` and
 * `/a/b/c` but not `/a/bc`. A prefix ending in `/` is taken as given: `/a/` covers
 * `/a/b` but not `/a` itself.
 */
export function cgroupHasPrefix(cgroup: string, prefix: string): boolean {
  if (prefix.length === 0) return false;
  if (prefix.endsWith('/')) return cgroup.startsWith(prefix);
  return cgroup === prefix || cgroup.startsWith(`${prefix}/`);
}

function selectorCount(m: RuleMatch): number {
  return [m.uids, m.gids, m.exePaths, m.exeSha256, m.cgroupPrefixes].filter((s) => s !== undefined).length;
}

export function ruleMatches(rule: Rule, who: WorkloadIdentity): boolean {
  const m = rule.match;
  if (selectorCount(m) === 0) return false;
  if (m.uids !== undefined && !m.uids.includes(who.uid)) return false;
  if (m.gids !== undefined && !m.gids.includes(who.gid)) return false;
  if (m.exePaths !== undefined && !m.exePaths.includes(who.exePath)) return false;
  if (m.exeSha256 !== undefined && !m.exeSha256.some((d) => d.equals(who.exeSha256))) return false;
  if (m.cgroupPrefixes !== undefined && !m.cgroupPrefixes.some((p) => cgroupHasPrefix(who.cgroup, p))) return false;
  return true;
}

/** The first rule in file order that matches, or undefined. */
export function matchRule(policy: Policy, who: WorkloadIdentity): Rule | undefined {
  return policy.rules.find((rule) => ruleMatches(rule, who));
}
