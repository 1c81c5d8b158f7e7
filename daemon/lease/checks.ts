/**
 * The checks a grant and a renewal both pass before anything is signed, in this order: an
 * epoch that passed and is still fresh, a valid policy in force, and a rule of that policy
 * matching the caller. A grant then narrows the rule's GPUs to what was asked; both refuse a
 * GPU that failed the current epoch. Each refusal is an AttestdError with a stable code and
 * a short reason the client may see.
 */
import { AttestdError } from '../base/errors.js';
import type { WorkloadIdentity } from '../base/workload-identity.js';
import type { EpochState } from '../appraisal/epoch-state.js';
import type { LoadedPolicy, Rule } from '../policy/types.js';
import { resolveRuleGpus } from '../policy/gpu-scope.js';
import { selectRule } from './identity.js';

/** What a lease is granted or renewed under. */
export interface Terms {
  epoch: EpochState;
  rule: Rule;
}

export interface TermsRequest {
  epoch: EpochState | undefined;
  now: () => number;
  policy: LoadedPolicy | undefined;
  who: WorkloadIdentity;
  /** The rule asked for (renewal: the lease's own); without one, the first rule that matches. */
  ruleName: string | undefined;
  /** The reason given when no rule matches. */
  noRule: string;
}

/** The epoch and rule a grant or renewal is made under, or the refusal. */
export function checkTerms(r: TermsRequest): Terms {
  const epoch = usableEpoch(r.epoch, r.now);
  if (!r.policy) throw new AttestdError('NOT_TRUSTED', 'no valid policy');
  const rule = selectRule(r.policy.policy, r.who, r.ruleName);
  if (!rule) throw new AttestdError('NO_MATCHING_RULE', r.noRule);
  return { epoch, rule };
}

/** The epoch if it passed and is still fresh; a failed one that went stale says so. */
function usableEpoch(e: EpochState | undefined, now: () => number): EpochState {
  if (!e || !e.pass) {
    const stale = e?.reasons[0]?.code === 'ATTESTATION_STALE';
    throw new AttestdError(stale ? 'ATTESTATION_STALE' : 'NOT_TRUSTED', stale ? 'attestation is stale' : 'host is not trusted');
  }
  if (now() > e.validUntilMs) throw new AttestdError('ATTESTATION_STALE', 'attestation is stale');
  return e;
}

/**
 * The GPUs a new lease covers: what the rule grants on this host, narrowed to `want` (UUIDs
 * or indices; empty for all of them).
 */
export function grantGpus(rule: Rule, epoch: EpochState, want: string[]): string[] {
  if (rule.gpus === undefined) {
    if (want.length > 0) throw new AttestdError('NO_MATCHING_RULE', 'the rule grants no GPU');
    return [];
  }
  if (!epoch.gpu) throw new AttestdError('NOT_TRUSTED', 'no GPU measurement in this epoch');
  const scope = resolveRuleGpus(rule, epoch.gpu);
  if ('code' in scope) throw new AttestdError('NO_MATCHING_RULE', scope.message);
  let uuids = scope.uuids;
  if (want.length > 0) {
    const byIndex = new Map(epoch.gpu.gpus.map((g) => [String(g.index), g.uuid]));
    const asked = want.map((w) => byIndex.get(w) ?? w.toLowerCase().replace(/^gpu-/, 'GPU-'));
    const outside = asked.find((u) => !uuids.includes(u));
    if (outside !== undefined) throw new AttestdError('NO_MATCHING_RULE', `the rule does not grant "${outside}"`);
    uuids = [...new Set(asked)];
  }
  refuseFailedGpus(uuids, epoch);
  return uuids;
}

/** Refuses a lease naming a GPU that failed the epoch on its own, naming the first. */
export function refuseFailedGpus(gpus: readonly string[], epoch: EpochState): void {
  const bad = gpus.find((g) => epoch.badGpus?.includes(g));
  if (bad !== undefined) throw new AttestdError('NOT_TRUSTED', `GPU ${bad} failed appraisal`);
}
