import { describe, expect, it } from 'vitest';
import { attestd } from '../../daemon/gen/proto.js';
import { recordedIntentProblem } from '../../daemon/auditor/lease-intent.js';
import { parsePolicy } from '../../daemon/policy/parse.js';
import { encodeIntent, intentDigest, type ResolvedIntent } from '../../daemon/verify/intent/codec.js';
import { A64, B64, v2With } from './policy-v2-helpers.js';

const policy = parsePolicy(v2With({ 15: `      gpus: all\n    intent: { measured_only: true, artifacts: { allow: ["${A64}"] } }` }), 'p.yaml');
const measured: ResolvedIntent = { artifacts: [{ name: 'w', path: '/w', sha256: Buffer.from(A64, 'hex'), measured: true }], imageDigest: '', cmdline: ['x'], jobId: '', labels: [] };

function pair(intent: ResolvedIntent | undefined, id = 'l1', digestOf = intent) {
  const enc = intent ? encodeIntent(intent) : new Uint8Array();
  const d = attestd.audit.v1.LeaseDecision.create({ kind: 1, leaseId: id, intent: enc });
  const claims = attestd.lease.v1.LeaseToken.create({ rule: 'dev', policySha256: policy.digest,
    intentSha256: digestOf ? intentDigest(encodeIntent(digestOf)) : new Uint8Array() });
  return { d, claims };
}

describe('offline check of a recorded intent', () => {
  it('accepts an intent that hashes to the token digest and satisfies the rule', () => {
    const { d, claims } = pair(measured);
    expect(recordedIntentProblem(d, claims, policy, new Map(), true)).toBeUndefined();
  });

  it('re-runs the rule constraints under the recorded policy', () => {
    const declared = { ...measured, artifacts: [{ name: 'w', sha256: Buffer.from(A64, 'hex'), measured: false }] };
    const { d, claims } = pair(declared);
    expect(recordedIntentProblem(d, claims, policy, new Map(), true)).toMatch(/INTENT_NOT_MEASURED/);
    const other = { ...measured, artifacts: [{ ...measured.artifacts[0]!, sha256: Buffer.from(B64, 'hex') }] };
    const p = pair(other);
    expect(recordedIntentProblem(p.d, p.claims, policy, new Map(), true)).toMatch(/INTENT_ARTIFACT_NOT_ALLOWED/);
  });

  it('refuses a digest without its intent, an intent without its digest, and garbage', () => {
    const a = pair(undefined, 'l1', measured);
    expect(recordedIntentProblem(a.d, a.claims, undefined, new Map(), true)).toMatch(/does not decode/);
    const b = pair(measured, 'l1', undefined);
    b.claims.intentSha256 = new Uint8Array();
    expect(recordedIntentProblem(b.d, b.claims, undefined, new Map(), true)).toMatch(/does not hash/);
    const c = pair(measured);
    c.d.intent = Buffer.from([1, 9, 9]);
    expect(recordedIntentProblem(c.d, c.claims, undefined, new Map(), true)).toMatch(/does not decode/);
  });

  it('a renewal must carry the intent of its grant', () => {
    const granted = new Map<string, string>();
    const g = pair(measured);
    expect(recordedIntentProblem(g.d, g.claims, policy, granted, true)).toBeUndefined();
    const r = pair({ ...measured, jobId: 'j' });
    expect(recordedIntentProblem(r.d, r.claims, policy, granted, false)).toMatch(/another intent/);
    expect(recordedIntentProblem(g.d, g.claims, policy, granted, false)).toBeUndefined();
  });
});
