/**
 * Where the manager's decisions go: the audit log, the metrics and the operator log. A grant,
 * a renewal and a refusal reach the caller only once their record is durable (recordOrFail);
 * a release, an expiry or a revocation takes effect at once and is recorded after the fact
 * (recordAfter), because ending a lease can only make the host safer and fail-closed must
 * not wait for the disk. Refusals go through the denial aggregator (denial-aggregator.ts): the
 * first of its kind is recorded like a grant, identical ones after it are counted and written
 * together.
 */
import { AttestdError } from '../base/errors.js';
import type { AuditBody } from '../audit/log.js';
import type { Outcome } from '../metrics/sink.js';
import type { WorkloadIdentity } from '../base/workload-identity.js';
import { DenialAggregator, type DenialAggregatorOptions } from './denial-aggregator.js';

/** Makes a record durable; rejects when it cannot. */
export type AuditFn = (body: AuditBody) => Promise<number>;
/** The operator log, for details a client must not see. */
export type LeaseLogFn = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
/** Told of every decision (for metrics): outcome, and the stable code of a refusal or revocation. */
export type DecisionCounter = (outcome: Outcome, reason?: string, count?: number) => void;

/** How repeated refusals are counted: the clock, windows and bounds of the aggregator. */
export type DenialLimits = Omit<DenialAggregatorOptions, 'write'>;

export class Decisions {
  readonly log: LeaseLogFn;
  readonly denials: DenialAggregator;

  constructor(private readonly audit: AuditFn, log: LeaseLogFn | undefined, private readonly counter: DecisionCounter | undefined,
    limits: DenialLimits) {
    this.log = log ?? (() => undefined);
    this.denials = new DenialAggregator({ ...limits,
      write: (body) => void this.recordAfter(body, 'counted denials not recorded', { count: body.leaseDecision?.repeats?.count }) });
  }

  /**
   * Records a refusal of `who` before the caller hears of it, or counts it when an identical
   * one was recorded within its window; fails with AUDIT_UNAVAILABLE when it cannot record.
   */
  async recordDenial(body: AuditBody, who: WorkloadIdentity): Promise<void> {
    if (this.denials.note(body.leaseDecision ?? {}, who) === 'counted') return;
    await this.recordOrFail(body, 'denial not recorded');
  }

  /** Before a grant or renewal of `who` is recorded: its counted refusals go first. */
  beforeIssue(who: WorkloadIdentity): void {
    this.denials.flushWorkload(who);
  }

  count(...decision: Parameters<DecisionCounter>): void {
    this.counter?.(...decision);
  }

  /**
   * Records `body` durably, or fails with AUDIT_UNAVAILABLE (the client's answer) after
   * logging `what` with the cause: no record, no decision.
   */
  async recordOrFail(body: AuditBody, what: string, fields?: Record<string, unknown>): Promise<void> {
    try {
      await this.audit(body);
    } catch (err) {
      this.log('error', what, { err: String(err), ...fields });
      throw new AttestdError('AUDIT_UNAVAILABLE', 'the decision could not be recorded', { cause: err });
    }
  }

  /** Records `body` after the fact; a failure is logged as `what`, and the decision stands. */
  recordAfter(body: AuditBody, what: string, fields?: Record<string, unknown>): Promise<unknown> {
    return this.audit(body).catch((err) => this.log('error', what, { err: String(err), ...fields }));
  }
}
