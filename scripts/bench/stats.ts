/**
 * Small statistics and timing helpers shared by the benchmarks. Percentiles use the
 * nearest-rank method on the sorted samples, so p99 of 1000 samples is the 990th value: a
 * real observation, never an interpolation between two.
 */

/** Nanoseconds on the monotonic clock. */
export function nowNs(): bigint {
  return process.hrtime.bigint();
}

/** Milliseconds elapsed since `start` (from nowNs). */
export function msSince(start: bigint): number {
  return Number(nowNs() - start) / 1e6;
}

export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(samples: readonly number[]): Summary {
  const n = samples.length;
  const mean = n === 0 ? Number.NaN : samples.reduce((a, b) => a + b, 0) / n;
  return {
    n,
    // A loop, not Math.min(...samples): spreading 100k+ samples overflows the stack.
    min: n === 0 ? Number.NaN : samples.reduce((a, b) => (b < a ? b : a), Infinity),
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    max: n === 0 ? Number.NaN : samples.reduce((a, b) => (b > a ? b : a), -Infinity),
    mean,
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs a full collection when node was started with --expose-gc, so one phase's garbage is not collected in the next. */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** A number with about three significant digits, for tables. */
export function fmt(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toFixed(3);
}
