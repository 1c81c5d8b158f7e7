/**
 * How a refused policy is reported: a list of problems, each with file, line, column,
 * field path and what was expected, in file order. The daemon logs the message as is;
 * `attestctl policy check` prints it; editors understand the `file:line:column:` form.
 */
import { AttestdError } from '../base/errors.js';
import type { PolicyProblem } from './types.js';

/** Enough to fix a file in one pass without letting a hostile file flood the log. */
export const MAX_PROBLEMS = 50;

export function formatProblem(p: PolicyProblem): string {
  const where = `${p.file}:${p.line}:${p.column}`;
  return p.path.length > 0 ? `${where}: ${p.path}: ${p.message}` : `${where}: ${p.message}`;
}

export function formatProblems(problems: PolicyProblem[]): string {
  return problems.map(formatProblem).join('\n');
}

/** File order, duplicates removed, bounded in number. */
export function orderProblems(problems: PolicyProblem[]): PolicyProblem[] {
  const sorted = [...problems].sort(
    (a, b) => a.line - b.line || a.column - b.column || compareText(a.path, b.path) || compareText(a.message, b.message),
  );
  const out: PolicyProblem[] = [];
  let last = '';
  for (const p of sorted) {
    const key = formatProblem(p);
    if (key === last) continue;
    last = key;
    out.push(p);
  }
  if (out.length <= MAX_PROBLEMS) return out;
  const kept = out.slice(0, MAX_PROBLEMS - 1);
  const first = kept[0];
  kept.push({
    file: first?.file ?? '',
    line: out[MAX_PROBLEMS - 1]?.line ?? 1,
    column: out[MAX_PROBLEMS - 1]?.column ?? 1,
    path: '',
    message: `${out.length - kept.length} more problems not shown`,
  });
  return kept;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class PolicyError extends AttestdError {
  readonly problems: PolicyProblem[];

  constructor(problems: PolicyProblem[], options?: { cause?: unknown }) {
    const ordered = orderProblems(problems);
    super('POLICY_INVALID', formatProblems(ordered), options);
    this.name = 'PolicyError';
    this.problems = ordered;
  }
}
