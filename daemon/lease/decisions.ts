/**
 * Where the manager's decisions go: the audit log, the metrics and the operator log. A grant,
 * a renewal and a refusal reach the caller only once their record is durable (recordOrFail);
 * a release, an expiry or a revocation takes effect at once and is recorded after the fact
 * (recordAfter), because ending a lease can only make the host safer and fail-closed must
 * not wait for the disk.
 */
import { AttestdError } from '../base/errors.js';
import type { AuditBody } from '../audit/log.js';
import type { Outcome } from '../metrics/sink.js';

/** Makes a record durable; rejects when it cannot. */
export type AuditFn = (body: AuditBody) => Promise<number>;
/** The operator log, for details a client must not see. */
export type LeaseLogFn = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
/** Told of every decision (for metrics): outcome, and the stable code of a refusal or revocation. */
export type DecisionCounter = (outcome: Outcome, reason?: string, count?: number) => void;

export class Decisions {
  readonly log: LeaseLogFn;

  constructor(private readonly audit: AuditFn, log: LeaseLogFn | undefined, private readonly counter: DecisionCounter | undefined) {
    this.log = log ?? (() => undefined);
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
