import type { WorkloadIdentity } from '../base/workload-identity.js';
import { matchRule } from '../policy/match.js';
import type { Policy, Rule } from '../policy/types.js';
import type { attestd } from '../gen/proto.js';

/**
 * The same workload means the same process instance running the same executable: pid
 * and start time together survive pid reuse, and the executable digest catches an exec()
 * into another program.
 */
export function sameWorkload(a: WorkloadIdentity, b: WorkloadIdentity): boolean {
  return a.pid === b.pid && a.startTime === b.startTime && a.uid === b.uid && a.exeSha256.equals(b.exeSha256);
}

/** The named rule if it matches the caller, else (no name given) the first rule that does. */
export function selectRule(policy: Policy, who: WorkloadIdentity, name?: string): Rule | undefined {
  if (!name) return matchRule(policy, who);
  const rule = policy.rules.find((r) => r.name === name);
  if (!rule) return undefined;
  return matchRule({ ...policy, rules: [rule] }, who);
}

export function identityProto(who: WorkloadIdentity): attestd.lease.v1.WorkloadIdentity.$Properties {
  return { pid: who.pid, uid: who.uid, gid: who.gid, startTime: Number(who.startTime), exePath: who.exePath,
    exeSha256: who.exeSha256, cgroup: who.cgroup };
}
