/**
 * Results of a benchmark run: every figure carries the baseline measured beside it in the
 * same run (the machine is shared and noisy, so the ratio is the figure to trust), and the
 * target from the issue where there is one. Printed as a table for people and as JSON for
 * machines.
 */
import { fmt } from './stats.js';

export interface Figure {
  metric: string;
  unit: string;
  value: number;
  /** Same unit as value, measured in the same run; its meaning is the section's `baseline`. */
  baseline: number;
  /** Whether a smaller value is better (latency, memory) or a larger one (throughput). */
  better: 'lower' | 'higher';
  target?: { text: string; met: boolean };
}

export interface Section {
  id: string;
  title: string;
  /** What the baseline column is. */
  baseline: string;
  figures: Figure[];
  notes: string[];
  /** Raw numbers behind the figures, for --json. */
  details?: Record<string, unknown>;
  /** Set when the benchmark could not run to the end. */
  error?: string;
  seconds: number;
}

export interface RunReport {
  startedAt: string;
  node: string;
  cpus: number;
  sections: Section[];
}

/** value / baseline: for latency and memory above 1 means slower or bigger than the baseline. */
export function ratio(f: Figure): number {
  return f.baseline === 0 ? Number.NaN : f.value / f.baseline;
}

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

export function renderTable(report: RunReport): string {
  const lines: string[] = [];
  lines.push(`attestd benchmarks  ${report.startedAt}  node ${report.node}  ${report.cpus} cpus`);
  lines.push('ratio = attestd / baseline, both measured in this run; targets are from the issue.');
  for (const s of report.sections) {
    lines.push('');
    lines.push(`${s.title}  (${s.seconds.toFixed(1)} s)`);
    lines.push(`  baseline: ${s.baseline}`);
    if (s.figures.length > 0) {
      const rows = s.figures.map((f) => [
        f.metric,
        `${fmt(f.value)} ${f.unit}`,
        `${fmt(f.baseline)} ${f.unit}`,
        Number.isFinite(ratio(f)) ? `${fmt(ratio(f))}x` : '-',
        f.target?.text ?? '',
        f.target ? (f.target.met ? 'met' : 'MISSED') : '',
      ]);
      const head = ['metric', 'attestd', 'baseline', 'ratio', 'target', ''];
      const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      const right = [false, true, true, true, false, false];
      const render = (cells: string[]) => '  ' + cells.map((c, i) => pad(c, widths[i]!, right[i])).join('  ').trimEnd();
      lines.push(render(head));
      lines.push('  ' + widths.map((w) => '-'.repeat(w)).join('  '));
      for (const r of rows) lines.push(render(r));
    }
    for (const n of s.notes) lines.push(`  note: ${n}`);
    if (s.error) lines.push(`  FAILED: ${s.error}`);
  }
  const figures = report.sections.flatMap((s) => s.figures);
  const withTarget = figures.filter((f) => f.target);
  const failed = report.sections.filter((s) => s.error).length;
  lines.push('');
  lines.push(`targets met: ${withTarget.filter((f) => f.target!.met).length}/${withTarget.length}` +
    (failed > 0 ? `; ${failed} benchmark(s) failed` : ''));
  return lines.join('\n') + '\n';
}

export function renderJson(report: RunReport): string {
  return JSON.stringify({
    ...report,
    sections: report.sections.map((s) => ({ ...s, figures: s.figures.map((f) => ({ ...f, ratio: ratio(f) })) })),
  }, null, 2) + '\n';
}

/** What a benchmark returns; main adds the id, title and timing. */
export type Outcome = Pick<Section, 'baseline' | 'figures' | 'notes' | 'details'>;

export interface Benchmark {
  id: string;
  title: string;
  run(): Promise<Outcome>;
}
