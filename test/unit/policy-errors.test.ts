import { describe, expect, it } from 'vitest';
import { PolicyError, parsePolicy } from '../../daemon/policy/parse.js';
import type { PolicyProblem } from '../../daemon/policy/types.js';

const Z = '0'.repeat(64);

/** A valid policy, one line per entry, so a test can swap a line and know its number. */
const BASE = [
  'version: 1', //                 1
  'attestation:', //               2
  '  interval: 2s', //             3
  '  max_age: 6s', //              4
  'pcrs:', //                      5
  '  sha256:', //                  6
  `    0: "${Z}"`, //              7
  'rules:', //                     8
  '  - name: dev', //              9
  '    match:', //                 10
  '      uids: [1000]', //         11
  '    lease:', //                 12
  '      ttl: 30s', //             13
  '      scopes: ["gpu:all"]', //  14
];

function withLines(changes: Record<number, string | null>): string {
  const out: string[] = [];
  BASE.forEach((line, i) => {
    const change = changes[i + 1];
    if (change === null) return;
    out.push(change ?? line);
  });
  return `${out.join('\n')}\n`;
}

function problems(text: string): PolicyProblem[] {
  try {
    parsePolicy(text, 'p.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).code).toBe('POLICY_INVALID');
    return (err as PolicyError).problems;
  }
  throw new Error('policy was accepted');
}

/** line:column path, the part of a problem a test pins exactly. */
function where(ps: PolicyProblem[]): string[] {
  return ps.map((p) => `${p.line}:${p.column} ${p.path}`);
}

describe('policy problems name file, line, column, path and what was expected', () => {
  it('the base document is valid', () => {
    expect(parsePolicy(withLines({}), 'p.yaml').policy.rules[0]?.name).toBe('dev');
  });

  it('bad YAML syntax', () => {
    const ps = problems(withLines({ 3: '  interval: "2s' }));
    expect(ps).toHaveLength(1);
    expect(ps[0]).toMatchObject({ file: 'p.yaml', line: 3, column: 16, path: '' });
    expect(ps[0]?.message).toMatch(/^expected valid YAML: /);
  });

  it('unknown key, with a suggestion and the missing field it displaced', () => {
    const ps = problems(withLines({ 4: '  max_agee: 6s' }));
    expect(where(ps)).toEqual(['2:1 attestation.max_age', '4:3 attestation.max_agee']);
    expect(ps[0]?.message).toMatch(/^missing required field 'max_age': expected a duration/);
    expect(ps[1]?.message).toBe(`unknown field "max_agee" (did you mean 'max_age'?); expected one of: interval, max_age`);
  });

  it('unknown key at the top level', () => {
    const ps = problems(withLines({ 1: 'version: 1\nallow_sha256: true' }));
    expect(where(ps)).toEqual(['2:1 allow_sha256']);
    expect(ps[0]?.message).toContain('expected one of: version, allow_sha1, attestation, pcrs, rules');
  });

  it('wrong type', () => {
    const ps = problems(withLines({ 11: '      uids: "1000"' }));
    expect(where(ps)).toEqual(['11:13 rules[0].match.uids']);
    expect(ps[0]?.message).toBe('expected a non-empty list of uids, found "1000"');
  });

  it('a duration that is a bare number', () => {
    const ps = problems(withLines({ 13: '      ttl: 30' }));
    expect(where(ps)).toEqual(['13:12 rules[0].lease.ttl']);
    expect(ps[0]?.message).toMatch(/^expected a duration: .* found the number 30$/);
  });

  it('out-of-range durations', () => {
    const ps = problems(withLines({ 3: '  interval: 100ms', 13: '      ttl: 25h' }));
    expect(where(ps)).toEqual(['3:13 attestation.interval', '13:12 rules[0].lease.ttl']);
    expect(ps[0]?.message).toBe('expected a duration from 500ms to 1h, found 100ms');
    expect(ps[1]?.message).toBe('expected a duration from 1s to 24h, found 25h');
  });

  it('hex digest of the wrong length for its bank', () => {
    const ps = problems(withLines({ 6: '  sha384:' }));
    expect(where(ps)).toEqual(['7:8 pcrs.sha384.0']);
    expect(ps[0]?.message).toBe(
      'expected a 96-character hex SHA-384 digest (quote it, so YAML keeps it a string), or a list of them, found a 64-character string',
    );
  });

  it('an unquoted all-digit digest is a number, and the message says to quote it', () => {
    const ps = problems(withLines({ 7: `    0: ${'1'.repeat(64)}` }));
    expect(where(ps)).toEqual(['7:8 pcrs.sha256.0']);
    expect(ps[0]?.message).toContain('quote it');
  });

  it('one bad entry in a list of allowed digests', () => {
    const ps = problems(withLines({ 7: `    0: ["${Z}", "xyz"]` }));
    expect(where(ps)).toEqual(['7:77 pcrs.sha256.0[1]']);
  });

  it('PCR index out of range', () => {
    const ps = problems(withLines({ 7: `    24: "${Z}"` }));
    expect(where(ps)).toEqual(['7:5 pcrs.sha256.24']);
    expect(ps[0]?.message).toBe('expected a PCR index from 0 to 23 as the key, found "24"');
  });

  it('sha1 bank without allow_sha1, and accepted with it', () => {
    const sha1 = { 6: '  sha1:', 7: `    0: "${'a'.repeat(40)}"` };
    const ps = problems(withLines(sha1));
    expect(where(ps)).toEqual(['6:3 pcrs.sha1']);
    expect(ps[0]?.message).toContain('allow_sha1: true');
    const allowed = parsePolicy(withLines({ ...sha1, 1: 'version: 1\nallow_sha1: true' }), 'p.yaml');
    expect(allowed.policy.pcrs.map((r) => r.alg)).toEqual(['sha1']);
  });

  it('duplicate rule name', () => {
    const text = `${withLines({})}  - name: dev\n    match: { gids: [5] }\n    lease: { ttl: 1s, scopes: [x] }\n`;
    const ps = problems(text);
    expect(where(ps)).toEqual(['15:11 rules[1].name']);
    expect(ps[0]?.message).toBe('expected a unique rule name; "dev" is already used by rules[0]');
  });

  it('duplicate YAML key', () => {
    const ps = problems(withLines({ 4: '  interval: 3s' }));
    expect(where(ps)).toEqual(['4:3 attestation.interval']);
    expect(ps[0]?.message).toBe('duplicate key: each key may appear only once in a mapping');
  });

  it('a number key and a string key with the same text are duplicates', () => {
    const ps = problems(withLines({ 7: `    0: "${Z}"\n    "0": "${Z}"` }));
    expect(where(ps)).toEqual(['8:5 pcrs.sha256.0']);
  });

  it('empty rules', () => {
    const ps = problems(withLines({ 8: 'rules: []', 9: null, 10: null, 11: null, 12: null, 13: null, 14: null }));
    expect(where(ps)).toEqual(['8:8 rules']);
    expect(ps[0]?.message).toBe('expected a non-empty list of at most 256 rules, found an empty list');
  });

  it('max_age shorter than interval', () => {
    const ps = problems(withLines({ 4: '  max_age: 1s' }));
    expect(where(ps)).toEqual(['4:12 attestation.max_age']);
    expect(ps[0]?.message).toBe('expected a max_age of at least the interval (2s), found 1s');
  });

  it('rule with no selector', () => {
    const ps = problems(withLines({ 10: '    match: {}', 11: null }));
    expect(where(ps)).toEqual(['10:12 rules[0].match']);
    expect(ps[0]?.message).toMatch(/^expected at least one selector: uids, gids, exe_paths, exe_sha256 or cgroup_prefixes/);
  });

  it('missing match and lease are located at the rule', () => {
    const ps = problems(withLines({ 10: null, 11: null, 12: null, 13: null, 14: null }));
    expect(where(ps)).toEqual(['9:5 rules[0].lease', '9:5 rules[0].match']);
  });

  it('paths that could never match a canonical kernel path', () => {
    const ps = problems(withLines({ 11: '      exe_paths: ["/usr/bin/../bin/python", "bin/python", "/usr/bin/"]' }));
    expect(where(ps)).toEqual([
      '11:19 rules[0].match.exe_paths[0]',
      '11:45 rules[0].match.exe_paths[1]',
      '11:59 rules[0].match.exe_paths[2]',
    ]);
    expect(ps.map((p) => p.message)).toEqual([
      'expected a normalized path without . or .. segments',
      'expected an absolute executable path starting with /, found "bin/python"',
      'expected a path without a trailing /',
    ]);
  });

  it('aliases, custom tags and non-scalar keys are refused', () => {
    expect(where(problems(withLines({ 14: '      scopes: &s ["gpu:all"]\n  - name: b\n    match: {uids: [1]}\n    lease: {ttl: 1s, scopes: *s}' })))).toEqual([
      '17:30 rules[1].lease.scopes',
    ]);
    expect(where(problems(withLines({ 3: '  interval: !!binary aGVsbG8=' })))).toEqual(['3:22 attestation.interval']);
    expect(problems(withLines({ 3: '  interval: !dur 2s' }))[0]).toMatchObject({ line: 3, column: 13 });
    expect(where(problems(withLines({ 1: 'version: 1\n? [a]\n: 1' })))).toEqual(['2:3 ']);
  });

  it('an empty file, a list and a scalar are not policies', () => {
    for (const text of ['', '# only a comment\n', '- 1\n', 'hello\n']) {
      const ps = problems(text);
      expect(ps).toHaveLength(1);
      expect(ps[0]).toMatchObject({ line: 1, column: 1, path: '' });
      expect(ps[0]?.message).toMatch(/^expected a policy mapping with version, attestation, pcrs and rules, found /);
    }
  });

  it('two documents in one file', () => {
    const ps = problems(`${withLines({})}---\nversion: 1\n`);
    expect(ps[0]).toMatchObject({ line: 15, column: 1, path: '' });
  });

  it('reports every problem at once, in file order', () => {
    const text = withLines({
      1: 'version: 3',
      3: '  interval: 2',
      6: '  sha3:',
      11: '      uids: [-1, 1.5]',
      14: '      scopes: ["", "ok"]',
    });
    const ps = problems(text);
    expect(where(ps)).toEqual([
      '1:10 version',
      '3:13 attestation.interval',
      '6:3 pcrs.sha3',
      '11:14 rules[0].match.uids[0]',
      '11:18 rules[0].match.uids[1]',
      '14:16 rules[0].lease.scopes[0]',
    ]);
    expect(ps.every((p) => p.file === 'p.yaml' && p.message.length > 0)).toBe(true);
    let err: unknown;
    try {
      parsePolicy(text, 'p.yaml');
    } catch (e) {
      err = e;
    }
    const lines = (err as Error).message.split('\n');
    expect(lines).toHaveLength(6);
    expect(lines[0]).toBe('p.yaml:1:10: version: expected the number 1 or 2, found the number 3');
  });

  it('bounds the number of problems reported', () => {
    const many = Array.from({ length: 200 }, (_, i) => `  bogus${i}: 1`).join('\n');
    const ps = problems(`${withLines({})}${many.replace(/^ {2}/gm, '')}\n`);
    expect(ps.length).toBe(50);
    expect(ps[49]?.message).toBe('151 more problems not shown');
  });

  it('refuses deep nesting before composing it, at the first collection too deep', () => {
    const ps = problems(`version: 1\nx: ${'['.repeat(200_000)}\n`);
    expect(ps).toEqual([{ file: 'p.yaml', line: 2, column: 35, path: '', message: 'expected at most 32 levels of nesting' }]);
    const blocks = problems(`${'- '.repeat(40)}1\n`);
    expect(blocks[0]).toMatchObject({ line: 1, column: 65, message: 'expected at most 32 levels of nesting' });
  });
});
