/**
 * Which GPUs a rule's lease covers on this host, from the rule's `lease.gpus` and the
 * current GPU measurement. Pure. The result goes into the lease token, and the daemon uses
 * it to revoke only the leases naming a GPU that drifted (gpuReasonsByUuid).
 */
import type { GpuMeasurement } from '../verify/gpu/measurement.js';
import type { Reason } from '../base/reason.js';
import type { Rule } from './types.js';

export interface GpuScope {
  /** Uuids as the measurement spells them, ordered by index. */
  uuids: string[];
  indices: number[];
}

/**
 * The GPUs `rule` names, resolved on `m`: 'all' is every GPU present (none when there are
 * none); a list names each by uuid (case-insensitive) or NVML index, each resolved once.
 * A rule without `gpus` covers no GPU (empty lists). A named GPU the host does not have
 * gives RULE_GPU_NOT_PRESENT, naming the first such entry, so no lease is granted for a
 * partial set.
 */
export function resolveRuleGpus(rule: Rule, m: GpuMeasurement): GpuScope | Reason {
  const gpus = [...m.gpus].sort((a, b) => a.index - b.index);
  if (rule.gpus === undefined) return { uuids: [], indices: [] };
  if (rule.gpus === 'all') return { uuids: gpus.map((g) => g.uuid), indices: gpus.map((g) => g.index) };
  const chosen = new Set<number>();
  for (const want of rule.gpus) {
    const g = typeof want === 'number' ? gpus.find((x) => x.index === want) : gpus.find((x) => x.uuid.toLowerCase() === want.toLowerCase());
    if (g === undefined) {
      const what = typeof want === 'number' ? `GPU index ${want}` : `GPU ${want}`;
      const reason: Reason = {
        code: 'RULE_GPU_NOT_PRESENT',
        message: `rule ${rule.name} names ${what}, which this host does not have (${gpus.length} GPU${gpus.length === 1 ? '' : 's'} present)`,
      };
      if (typeof want === 'string') reason.gpu = want;
      return reason;
    }
    chosen.add(g.index);
  }
  const picked = gpus.filter((g) => chosen.has(g.index));
  return { uuids: picked.map((g) => g.uuid), indices: picked.map((g) => g.index) };
}
