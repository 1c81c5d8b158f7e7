import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../daemon/policy/parse.js';
import { checkIntent, type IntentConstraints } from '../../daemon/policy/intent.js';
import type { ResolvedIntent } from '../../daemon/verify/intent/codec.js';
import { A64, B64, problems, v2With } from './policy-v2-helpers.js';

const INTENT_LINES = [
  `      gpus: all`,
  '    intent:',
  '      require: [image_digest, job_id, artifacts]',
  '      measured_only: true',
  `      artifacts: { allow: ["${A64.toUpperCase()}"] }`,
  `      images: { allow: ["${B64}"] }`,
].join('\n');

const intent = (over: Partial<ResolvedIntent> = {}): ResolvedIntent => ({
  artifacts: [{ name: 'weights', path: '/m/w', sha256: Buffer.from(A64, 'hex'), measured: true }],
  imageDigest: `sha256:${B64}`, cmdline: ['python3'], jobId: 'job-1', labels: [], ...over,
});

describe('policy: rule intent constraints', () => {
  it('parses a rule intent section into constraints (digests lowercased, images prefixed)', () => {
    const rule = parsePolicy(v2With({ 15: INTENT_LINES }), 'p.yaml').policy.rules[0]!;
    expect(rule.intent).toEqual({ require: ['image_digest', 'job_id', 'artifacts'], measuredOnly: true, artifacts: [A64], images: [`sha256:${B64}`] });
  });

  it('refuses unknown fields, bad digests and a version 1 policy with located problems', () => {
    expect(problems(v2With({ 15: '    intent: { require: [cmdline] }' })).map((p) => p.path)).toContain('rules[0].intent.require[0]');
    expect(problems(v2With({ 15: '    intent: { images: { allow: ["sha256:x"] } }' })).length).toBeGreaterThan(0);
    expect(problems(v2With({ 15: '    intent: { measured: true }' })).length).toBeGreaterThan(0);
    const v1 = ['version: 1', 'attestation: { interval: 2s, max_age: 6s }', `pcrs: { sha256: { 4: "${A64}" } }`,
      'rules:', '  - name: dev', '    match: { uids: [1000] }', '    lease: { ttl: 30s, scopes: [a] }', '    intent: { measured_only: true }'].join('\n');
    expect(problems(v1).some((p) => p.path === 'rules[0].intent' && /version: 2/.test(p.message))).toBe(true);
  });

  it('checkIntent: required fields, measured only, allowed artifacts and images, each with its code', () => {
    const c: IntentConstraints = { require: ['image_digest', 'job_id', 'artifacts'], measuredOnly: true, artifacts: [A64], images: [`sha256:${B64}`] };
    expect(() => checkIntent(c, intent())).not.toThrow();
    expect(() => checkIntent(undefined, undefined)).not.toThrow();
    expect(() => checkIntent(c, undefined)).toThrow(expect.objectContaining({ code: 'INTENT_REQUIRED' }));
    expect(() => checkIntent(c, intent({ jobId: '' }))).toThrow(expect.objectContaining({ code: 'INTENT_REQUIRED', message: expect.stringContaining('job_id') }));
    const declared = intent({ artifacts: [{ name: 'weights', sha256: Buffer.from(A64, 'hex'), measured: false }] });
    expect(() => checkIntent(c, declared)).toThrow(expect.objectContaining({ code: 'INTENT_NOT_MEASURED' }));
    expect(() => checkIntent({ ...c, measuredOnly: false }, declared)).not.toThrow();
    const other = intent({ artifacts: [{ name: 'weights', path: '/m/w', sha256: Buffer.from(B64, 'hex'), measured: true }] });
    expect(() => checkIntent(c, other)).toThrow(expect.objectContaining({ code: 'INTENT_ARTIFACT_NOT_ALLOWED', message: expect.stringContaining('"weights"') }));
    expect(() => checkIntent(c, intent({ imageDigest: `sha256:${A64}` }))).toThrow(expect.objectContaining({ code: 'INTENT_IMAGE_NOT_ALLOWED' }));
  });
});
