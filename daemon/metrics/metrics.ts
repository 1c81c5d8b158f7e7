/**
 * Prometheus metrics of attestd (prom-client), in their own registry. Names and labels are
 * documented in docs/metrics.md; labels take only bounded values (states, outcomes, stable
 * codes, evidence sources), never ids or paths.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MetricsSink, MetricsSources, Outcome } from './sink.js';

export type { Outcome };

/** What the state gauges show until the daemon's state is handed over (readFrom): nothing yet. */
const NOT_STARTED: MetricsSources = { state: () => 'STARTING', epoch: () => 0, activeLeases: () => 0, lastPassMs: () => 0 };

/**
 * Counts what it is told from the start (decisions, appraisals, sources); the state gauges
 * read the daemon's state at each scrape, from the sources handed over once that state exists.
 */
export class Metrics implements MetricsSink {
  readonly registry = new Registry();
  private src: MetricsSources = NOT_STARTED;
  private readonly decisions: Counter<'outcome' | 'reason'>;
  private readonly appraisal: Histogram<'result'>;
  private readonly sourceUp: Gauge<'source'>;
  private readonly gpuOk: Gauge<'uuid'>;
  private readonly collateralAge: Gauge;

  constructor() {
    const registers = [this.registry];
    const src = (): MetricsSources => this.src;
    new Gauge({ name: 'attestd_state', help: 'Host state: 1 for the current state, 0 for the others', labelNames: ['state'], registers,
      collect() {
        const s = src().state();
        for (const name of ['STARTING', 'TRUSTED', 'UNTRUSTED']) this.set({ state: name }, s === name ? 1 : 0);
      } });
    new Gauge({ name: 'attestd_epoch', help: 'Current epoch number', registers, collect() { this.set(src().epoch()); } });
    new Gauge({ name: 'attestd_active_leases', help: 'Leases currently held', registers, collect() { this.set(src().activeLeases()); } });
    new Gauge({ name: 'attestd_seconds_since_last_passing_appraisal', help: 'Seconds since the latest passing appraisal (-1 if none)', registers,
      collect() {
        const t = src().lastPassMs();
        this.set(t ? (Date.now() - t) / 1000 : -1);
      } });
    this.auditLogGauges(registers, src);
    this.decisions = new Counter({ name: 'attestd_lease_decisions_total', help: 'Lease decisions by outcome and reason code', labelNames: ['outcome', 'reason'], registers });
    this.appraisal = new Histogram({ name: 'attestd_appraisal_duration_seconds', help: 'Time to collect, verify, appraise and record one epoch', labelNames: ['result'], registers,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] });
    this.sourceUp = new Gauge({ name: 'attestd_evidence_source_up', help: 'Whether an evidence source answered in the latest epoch', labelNames: ['source'], registers });
    this.gpuOk = new Gauge({ name: 'attestd_gpu_ok', help: 'Per GPU: 1 when it passed the latest appraisal, 0 when it failed', labelNames: ['uuid'], registers });
    this.collateralAge = new Gauge({ name: 'attestd_cvm_collateral_age_seconds', help: 'Age of the oldest confidential-VM collateral file', registers });
  }

  /** The audit folder against its disk budget (audit/budget.ts), read at each scrape. */
  private auditLogGauges(registers: Registry[], src: () => MetricsSources): void {
    new Gauge({ name: 'attestd_audit_log_bytes', help: 'Bytes of the files in the audit folder', registers,
      collect() { this.set(src().auditLog?.().usedBytes ?? 0); } });
    new Gauge({ name: 'attestd_audit_log_budget_bytes', help: 'Disk budget of the audit folder in force', registers,
      collect() { this.set(src().auditLog?.().budgetBytes ?? 0); } });
    new Gauge({ name: 'attestd_audit_log_state', help: 'Audit log against its budget: 1 for the current state, 0 for the others',
      labelNames: ['state'], registers,
      collect() {
        const s = src().auditLog?.().state;
        for (const name of ['OK', 'LOG_NEARLY_FULL', 'LOG_FULL']) this.set({ state: name }, s === name ? 1 : 0);
      } });
  }

  /** Where the state gauges read from, from now on. */
  readFrom(src: MetricsSources): void {
    this.src = src;
  }

  /** Per-GPU status; GPUs no longer present are dropped from the series. */
  gpus(uuids: readonly string[], bad: readonly string[]): void {
    this.gpuOk.reset();
    for (const u of uuids) this.gpuOk.set({ uuid: u }, bad.includes(u) ? 0 : 1);
  }

  collateral(issuedAtMs: number | undefined): void {
    if (issuedAtMs === undefined) this.collateralAge.reset();
    else this.collateralAge.set(Math.max(0, (Date.now() - issuedAtMs) / 1000));
  }

  decision(outcome: Outcome, reason = '', count = 1): void {
    this.decisions.inc({ outcome, reason }, count);
  }

  appraised(seconds: number, pass: boolean): void {
    this.appraisal.observe({ result: pass ? 'pass' : 'fail' }, seconds);
  }

  source(name: string, up: boolean): void {
    this.sourceUp.set({ source: name }, up ? 1 : 0);
  }
}
