import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../daemon/policy/parse.js';
import { maxDepthOf } from '../../daemon/policy/lineage.js';
import { A64, problems, v2With } from './policy-v2-helpers.js';

describe('policy: rule lineage', () => {
  it('parses lineage.max_depth; a rule without it derives nothing', () => {
    const rule = parsePolicy(v2With({ 15: '    lineage: { max_depth: 3 }' }), 'p.yaml').policy.rules[0]!;
    expect(rule.lineage).toEqual({ maxDepth: 3 });
    expect(maxDepthOf(rule)).toBe(3);
    const plain = parsePolicy(v2With({}), 'p.yaml').policy.rules[0]!;
    expect(plain.lineage).toBeUndefined();
    expect(maxDepthOf(plain)).toBe(0);
  });

  it('refuses a depth out of range, unknown fields and a version 1 policy with located problems', () => {
    expect(problems(v2With({ 15: '    lineage: { max_depth: 17 }' })).map((p) => p.path)).toContain('rules[0].lineage.max_depth');
    expect(problems(v2With({ 15: '    lineage: { max_depth: -1 }' })).length).toBeGreaterThan(0);
    expect(problems(v2With({ 15: '    lineage: { max_depth: 1.5 }' })).length).toBeGreaterThan(0);
    expect(problems(v2With({ 15: '    lineage: { depth: 1 }' })).length).toBeGreaterThan(0);
    expect(problems(v2With({ 15: '    lineage: {}' })).length).toBeGreaterThan(0);
    const v1 = ['version: 1', 'attestation: { interval: 2s, max_age: 6s }', `pcrs: { sha256: { 4: "${A64}" } }`,
      'rules:', '  - name: dev', '    match: { uids: [1000] }', '    lease: { ttl: 30s, scopes: [a] }', '    lineage: { max_depth: 1 }'].join('\n');
    expect(problems(v1).some((p) => p.path === 'rules[0].lineage' && /version: 2/.test(p.message))).toBe(true);
  });
});
