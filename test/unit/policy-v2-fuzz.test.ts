import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { requiredSelections } from '../../daemon/policy/appraise.js';
import { appraiseCvm } from '../../daemon/policy/appraise-cvm.js';
import { appraiseGpu } from '../../daemon/policy/appraise-gpu.js';
import { appraiseIma } from '../../daemon/policy/appraise-ima.js';
import { appraisePcrsAt } from '../../daemon/policy/appraise-window.js';
import { resolveRuleGpus } from '../../daemon/policy/gpu-scope.js';
import { PolicyError, parsePolicy } from '../../daemon/policy/parse.js';
import type { LoadedPolicy } from '../../daemon/policy/types.js';
import { noGpuMeasurement } from '../../daemon/verify/gpu/measurement.js';

const REFERENCE = readFileSync('policies/reference.yaml', 'utf8');
// A bound that catches a hang or a quadratic blow-up, far above normal parse times, so a busy
// machine does not make it fail: speed itself is for the benchmarks.
const SLOW_MS = 15_000;

/** Parses; fails the property on anything but a valid policy or a located PolicyError. */
function outcome(text: string): LoadedPolicy | PolicyError {
  const started = performance.now();
  let result: LoadedPolicy | PolicyError;
  try {
    result = parsePolicy(text, 'fuzz.yaml');
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    result = err;
  }
  expect(performance.now() - started).toBeLessThan(SLOW_MS);
  if (result instanceof PolicyError) {
    const lines = text.split('\n').length;
    expect(result.problems.length).toBeGreaterThan(0);
    for (const p of result.problems) {
      expect(p.line).toBeGreaterThanOrEqual(1);
      expect(p.line).toBeLessThanOrEqual(lines + 1);
      expect(p.column).toBeGreaterThanOrEqual(1);
      expect(p.message.length).toBeGreaterThan(0);
    }
    return result;
  }
  // Whatever loads satisfies what the appraisers rely on, and appraising it never throws.
  const { policy } = result;
  const window = policy.updateWindow;
  if (window !== undefined) {
    expect(Number.isFinite(window.untilMs)).toBe(true);
    for (const w of window.pcrs) expect(policy.pcrs.some((r) => r.alg === w.alg && r.index === w.index)).toBe(true);
  }
  if (!policy.allowSha1) {
    expect(policy.boot?.bank).not.toBe('sha1');
    expect(policy.ima?.bank).not.toBe('sha1');
    expect(policy.boot?.bootApplications?.some((b) => b.alg === 'sha1') ?? false).toBe(false);
  }
  if (policy.version === 1) for (const key of ['updateWindow', 'boot', 'ima', 'cvm', 'gpu'] as const) expect(policy[key]).toBeUndefined();
  requiredSelections(policy);
  appraisePcrsAt(policy, [], 0);
  const none = noGpuMeasurement('fuzz');
  if (policy.gpu) appraiseGpu(policy.gpu, none);
  if (policy.cvm) appraiseCvm(policy.cvm, undefined, 0, 0);
  if (policy.ima) appraiseIma(policy.ima, []);
  for (const rule of policy.rules) resolveRuleGpus(rule, none);
  return result;
}

const yamlChars = fc.constantFrom(
  ':', '-', '[', ']', '{', '}', '"', "'", '#', '&', '*', '!', '|', '>', ',', ' ', '  ', '\n', '0', '1', '9', 'a', 'f', 'd', 'h', '~', 'GPU-', 'sha1',
);

const edit = fc.record({
  at: fc.nat(),
  op: fc.constantFrom('insert', 'delete', 'replace'),
  text: fc.oneof(yamlChars, fc.string({ maxLength: 4 })),
  length: fc.integer({ min: 1, max: 8 }),
});

function applyEdits(source: string, edits: { at: number; op: string; text: string; length: number }[]): string {
  let s = source;
  for (const e of edits) {
    const at = e.at % (s.length + 1);
    if (e.op === 'insert') s = s.slice(0, at) + e.text + s.slice(at);
    else if (e.op === 'delete') s = s.slice(0, at) + s.slice(at + e.length);
    else s = s.slice(0, at) + e.text + s.slice(at + e.text.length);
  }
  return s;
}

/** Every path to a value in a plain document, for replacing one value at a time. */
function paths(value: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (Array.isArray(value)) value.forEach((v, i) => paths(v, [...prefix, i], out));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) paths(v, [...prefix, k], out);
  return out;
}

describe('parsePolicy on mutations of policies/reference.yaml only ever throws PolicyError', () => {
  it('the reference itself loads', () => {
    expect(outcome(REFERENCE)).not.toBeInstanceOf(PolicyError);
  });

  it('character-level edits', () => {
    fc.assert(fc.property(fc.array(edit, { minLength: 1, maxLength: 6 }), (edits) => void outcome(applyEdits(REFERENCE, edits))), { numRuns: 300 });
  });

  it('line-level drops, duplicates and swaps', () => {
    const lines = REFERENCE.split('\n');
    const op = fc.record({ from: fc.nat(lines.length - 1), to: fc.nat(lines.length - 1), kind: fc.constantFrom('drop', 'dup', 'swap') });
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 4 }), (ops) => {
        const ls = [...lines];
        for (const o of ops) {
          const from = o.from % ls.length;
          const to = o.to % ls.length;
          if (o.kind === 'drop' && ls.length > 1) ls.splice(from, 1);
          else if (o.kind === 'dup') ls.splice(to, 0, ls[from] ?? '');
          else [ls[from], ls[to]] = [ls[to] ?? '', ls[from] ?? ''];
        }
        outcome(ls.join('\n'));
      }),
      { numRuns: 200 },
    );
  });

  it('one value anywhere in the document replaced by random data', () => {
    const doc = parseYaml(REFERENCE) as Record<string, unknown>;
    const all = paths(doc);
    fc.assert(
      fc.property(fc.constantFrom(...all), fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('all', 'sha1', 'on', 'off', '30d', '0d', 'GPU-x', 1, 2, -1, 64)), (path, value) => {
        const copy = structuredClone(doc) as Record<string | number, unknown>;
        let target: Record<string | number, unknown> = copy;
        for (const seg of path.slice(0, -1)) target = target[seg] as Record<string | number, unknown>;
        const last = path[path.length - 1];
        outcome(stringifyYaml(last === undefined ? value : ((target[last] = value), copy)));
      }),
      { numRuns: 400 },
    );
  });

  it('version 1 with any version 2 section is refused, naming the section', () => {
    const doc = parseYaml(REFERENCE) as Record<string, unknown>;
    for (const key of ['update_window', 'boot', 'ima', 'cvm', 'gpu']) {
      const v1 = { ...doc, version: 1, rules: [{ name: 'r', match: { uids: [0] }, lease: { ttl: '1s', scopes: ['x'] } }] };
      for (const other of ['update_window', 'boot', 'ima', 'cvm', 'gpu']) if (other !== key) delete (v1 as Record<string, unknown>)[other];
      const result = outcome(stringifyYaml(v1));
      expect(result).toBeInstanceOf(PolicyError);
      expect((result as PolicyError).problems.map((p) => p.path)).toEqual([key]);
    }
  });
});
