/**
 * The policy in force, held in one place: the attestation loop appraises under it, the lease
 * manager grants under it, status reports it. Either a valid policy is in force, or none is
 * and `problem` says why (the last load was invalid). Loading files is the caller's business
 * (config/policy-file.ts); this only holds what was loaded.
 */
import type { LoadedPolicy } from './types.js';

/** What readers of the policy in force may see; only the daemon changes it. */
export interface PolicyInForce {
  /** The valid policy in force, or undefined when none is. */
  readonly current: LoadedPolicy | undefined;
  /** Why no policy is in force (the last load failed), or undefined. */
  readonly problem: string | undefined;
}

export class PolicyHolder implements PolicyInForce {
  private loaded: LoadedPolicy | undefined;
  private failure: string | undefined;

  constructor(initial?: LoadedPolicy) {
    this.loaded = initial;
  }

  get current(): LoadedPolicy | undefined {
    return this.loaded;
  }

  get problem(): string | undefined {
    return this.failure;
  }

  /** Puts a valid policy in force; whatever was wrong before is over. */
  load(policy: LoadedPolicy): void {
    this.loaded = policy;
    this.failure = undefined;
  }

  /** Leaves no policy in force, because of `problem`, until a valid one loads (fail closed). */
  reject(problem: string): void {
    this.loaded = undefined;
    this.failure = problem;
  }
}
