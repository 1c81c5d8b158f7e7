import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { PolicyError, parsePolicy } from '../../daemon/policy/parse.js';
import type { LoadedPolicy } from '../../daemon/policy/types.js';

const DEV = readFileSync('policies/dev.yaml', 'utf8');
/** A single parse of a small document that takes this long is a hang, not slowness. */
// A bound that catches a hang or a quadratic blow-up, far above normal parse times, so a busy
// machine does not make it fail: speed itself is for the benchmarks.
const SLOW_MS = 15_000;

/** Parses and returns the outcome; fails the property on anything but a valid policy or a PolicyError. */
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
    expect(result.code).toBe('POLICY_INVALID');
    expect(result.problems.length).toBeGreaterThan(0);
    for (const p of result.problems) {
      expect(p.file).toBe('fuzz.yaml');
      expect(p.line).toBeGreaterThanOrEqual(1);
      expect(p.line).toBeLessThanOrEqual(lines + 1);
      expect(p.column).toBeGreaterThanOrEqual(1);
      expect(p.message.length).toBeGreaterThan(0);
    }
  } else {
    // Whatever got through satisfies the invariants the rest of the daemon relies on.
    const { policy } = result;
    expect(policy.intervalMs).toBeGreaterThanOrEqual(500);
    expect(policy.maxAgeMs).toBeGreaterThanOrEqual(policy.intervalMs);
    expect(policy.pcrs.length).toBeGreaterThan(0);
    expect(policy.rules.length).toBeGreaterThan(0);
    expect(new Set(policy.rules.map((r) => r.name)).size).toBe(policy.rules.length);
    for (const r of policy.rules) expect(Object.keys(r.match).length).toBeGreaterThan(0);
    for (const req of policy.pcrs) {
      expect(req.index).toBeGreaterThanOrEqual(0);
      expect(req.index).toBeLessThanOrEqual(23);
      expect(req.alg === 'sha1' ? policy.allowSha1 : true).toBe(true);
    }
  }
  return result;
}

const yamlChars = fc.constantFrom(
  ':', '-', '[', ']', '{', '}', '"', "'", '#', '&', '*', '!', '|', '>', '%', '@', '`', '?', ',',
  ' ', '  ', '\t', '\n', '\r', '\0', '0', '1', '9', 'a', 'f', 's', 'm', 'h', '~', '<<', '\u00e9', '\ufeff',
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

describe('parsePolicy only ever throws PolicyError', () => {
  it('on random strings', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 })), (text) => {
        outcome(text);
      }),
      { numRuns: 400 },
    );
  });

  it('on strings built from YAML punctuation', () => {
    fc.assert(
      fc.property(fc.array(yamlChars, { maxLength: 200 }), (parts) => {
        outcome(parts.join(''));
      }),
      { numRuns: 400 },
    );
  });

  it('on character-level mutations of dev.yaml', () => {
    expect(outcome(DEV)).not.toBeInstanceOf(PolicyError);
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 6 }), (edits) => {
        outcome(applyEdits(DEV, edits));
      }),
      { numRuns: 500 },
    );
  });

  it('on line-level mutations of dev.yaml', () => {
    const lines = DEV.split('\n');
    fc.assert(
      fc.property(
        fc.array(fc.record({ from: fc.nat(lines.length - 1), to: fc.nat(lines.length - 1), op: fc.constantFrom('drop', 'dup', 'swap') }), {
          minLength: 1,
          maxLength: 4,
        }),
        (ops) => {
          const ls = [...lines];
          for (const o of ops) {
            const from = o.from % ls.length;
            const to = o.to % ls.length;
            if (o.op === 'drop' && ls.length > 1) ls.splice(from, 1);
            else if (o.op === 'dup') ls.splice(to, 0, ls[from] ?? '');
            else [ls[from], ls[to]] = [ls[to] ?? '', ls[from] ?? ''];
          }
          outcome(ls.join('\n'));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('on well-formed YAML whose values are replaced by random data', () => {
    const devValue = parseYaml(DEV) as Record<string, unknown>;
    const paths: (string | number)[][] = [
      [], ['version'], ['attestation'], ['attestation', 'interval'], ['attestation', 'max_age'], ['pcrs'],
      ['pcrs', 'sha256'], ['pcrs', 'sha256', 16], ['rules'], ['rules', 0], ['rules', 0, 'name'], ['rules', 0, 'match'],
      ['rules', 0, 'match', 'uids'], ['rules', 0, 'lease'], ['rules', 0, 'lease', 'ttl'], ['rules', 0, 'lease', 'scopes'],
      ['allow_sha1'], ['rules', 0, 'match', 'exe_paths'], ['rules', 0, 'match', 'cgroup_prefixes'],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...paths), fc.jsonValue({ maxDepth: 3 }), (path, value) => {
        const copy = structuredClone(devValue) as Record<string | number, unknown>;
        let target: Record<string | number, unknown> = copy;
        for (const seg of path.slice(0, -1)) target = target[seg] as Record<string | number, unknown>;
        const last = path[path.length - 1];
        const doc = last === undefined ? value : ((target[last] = value), copy);
        outcome(stringifyYaml(doc));
      }),
      { numRuns: 400 },
    );
  });

  it('on hostile shapes: deep nesting, many keys, long lines, alias bombs', () => {
    const hostile = [
      `${'['.repeat(50_000)}`,
      `${'{a: '.repeat(20_000)}`,
      `${'- '.repeat(10_000)}1\n`,
      Array.from({ length: 20_000 }, (_, i) => `k${i}: ${i}`).join('\n'),
      `version: 1\nx: "${'a'.repeat(500_000)}"\n`,
      `a: &a [1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c]\n`,
      `pcrs:\n  sha256:\n${Array.from({ length: 5000 }, (_, i) => `    ${i}: "x"`).join('\n')}\n`,
    ];
    for (const text of hostile) expect(outcome(text)).toBeInstanceOf(PolicyError);
  });
});
