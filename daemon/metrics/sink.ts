/**
 * What the daemon tells its metrics. Without a metrics endpoint the sink is a no-op and
 * prom-client is never loaded, which keeps its memory out of a daemon that does not export.
 */
export type Outcome = 'granted' | 'denied' | 'renewed' | 'renew_denied' | 'released' | 'revoked' | 'expired';

export interface MetricsSink {
  decision(outcome: Outcome, reason?: string, count?: number): void;
  appraised(seconds: number, pass: boolean): void;
  source(name: string, up: boolean): void;
  gpus(uuids: readonly string[], bad: readonly string[]): void;
  collateral(issuedAtMs: number | undefined): void;
}

export const NO_METRICS: MetricsSink = { decision() {}, appraised() {}, source() {}, gpus() {}, collateral() {} };

/** The audit log's disk budget as audit/budget.ts measures it. */
export interface LogUsageSource {
  state: 'OK' | 'LOG_NEARLY_FULL' | 'LOG_FULL';
  usedBytes: number;
  budgetBytes: number;
}

export interface MetricsSources {
  state(): 'STARTING' | 'TRUSTED' | 'UNTRUSTED';
  epoch(): number;
  activeLeases(): number;
  /** Unix ms of the latest passing appraisal, 0 if none. */
  lastPassMs(): number;
  /** The audit log's usage against its budget; absent before the log is open. */
  auditLog?(): LogUsageSource;
}
