import { describe, expect, it } from 'vitest';
import { appraisePcrs, requiredSelections } from '../../daemon/policy/appraise.js';
import { parsePolicy } from '../../daemon/policy/parse.js';
import type { PcrBank, Policy } from '../../daemon/policy/types.js';

const zero = Buffer.alloc(32);
const hex = (b: Buffer): string => b.toString('hex');
const fill = (byte: number, n = 32): Buffer => Buffer.alloc(n, byte);

const policyText = `version: 1
attestation: { interval: 2s, max_age: 6s }
pcrs:
  sha384:
    4: "${hex(fill(0x44, 48))}"
  sha256:
    16: "${hex(zero)}"
    0: ["${hex(fill(0xaa))}", "${hex(fill(0xbb))}"]
rules:
  - name: r
    match: { uids: [0] }
    lease: { ttl: 1s, scopes: [x] }
`;
const policy = parsePolicy(policyText, 'p.yaml').policy;

function banks(sha256: [number, Buffer][], sha384: [number, Buffer][] = [[4, fill(0x44, 48)]]): PcrBank[] {
  return [
    { alg: 'sha256', values: new Map(sha256) },
    { alg: 'sha384', values: new Map(sha384) },
  ];
}

const good = (): PcrBank[] => banks([[0, fill(0xaa)], [16, zero], [7, fill(0x77)]]);

describe('appraisePcrs', () => {
  it('passes when every required PCR holds an allowed value, ignoring extra PCRs', () => {
    expect(appraisePcrs(policy, good())).toEqual({ pass: true, reasons: [] });
    // Any entry of an allowed list will do.
    expect(appraisePcrs(policy, banks([[0, fill(0xbb)], [16, zero]])).pass).toBe(true);
  });

  it('fails on a changed PCR, naming bank, index, found and allowed values', () => {
    const drifted = fill(0x3f);
    const v = appraisePcrs(policy, banks([[0, fill(0xaa)], [16, drifted]]));
    expect(v.pass).toBe(false);
    expect(v.reasons).toEqual([
      { code: 'PCR_MISMATCH', message: `PCR sha256:16 is ${hex(drifted)}, policy allows ${hex(zero)}` },
    ]);
  });

  it('lists every allowed value when none matches', () => {
    const v = appraisePcrs(policy, banks([[0, fill(0xcc)], [16, zero]]));
    expect(v.reasons[0]?.message).toBe(
      `PCR sha256:0 is ${hex(fill(0xcc))}, policy allows one of ${hex(fill(0xaa))}, ${hex(fill(0xbb))}`,
    );
  });

  it('fails when a required PCR or a whole bank was not quoted', () => {
    const missingPcr = appraisePcrs(policy, banks([[0, fill(0xaa)]]));
    expect(missingPcr.pass).toBe(false);
    expect(missingPcr.reasons.map((r) => r.code)).toEqual(['PCR_NOT_QUOTED']);
    expect(missingPcr.reasons[0]?.message).toContain('PCR sha256:16 was not quoted');

    const missingBank = appraisePcrs(policy, [{ alg: 'sha256', values: new Map([[0, fill(0xaa)], [16, zero]]) }]);
    expect(missingBank.reasons.map((r) => r.message.slice(0, 14))).toEqual(['PCR sha384:4 w']);
    expect(appraisePcrs(policy, []).reasons).toHaveLength(3);
  });

  it('does not accept a value from another bank or of another length', () => {
    const swapped: PcrBank[] = [
      { alg: 'sha256', values: new Map([[0, fill(0xaa)], [16, zero], [4, fill(0x44, 48)]]) },
      { alg: 'sha384', values: new Map([[4, fill(0x44, 32)]]) },
    ];
    const v = appraisePcrs(policy, swapped);
    expect(v.reasons.map((r) => `${r.code} ${r.message.slice(0, 12)}`)).toEqual(['PCR_MISMATCH PCR sha384:4']);
  });

  it('reports all failures in a fixed order: banks sha1..sha512, PCRs ascending', () => {
    const v = appraisePcrs(policy, banks([[0, fill(1)], [16, fill(2)]], [[4, fill(3, 48)]]));
    expect(v.reasons.map((r) => r.message.split(' ')[1])).toEqual(['sha256:0', 'sha256:16', 'sha384:4']);
    const shuffled: Policy = { ...policy, pcrs: [...policy.pcrs].reverse() };
    expect(appraisePcrs(shuffled, banks([[0, fill(1)], [16, fill(2)]], [[4, fill(3, 48)]]))).toEqual(v);
  });

  it('refuses a bank presented twice', () => {
    const v = appraisePcrs(policy, [...good(), { alg: 'sha256', values: new Map([[0, fill(0xaa)], [16, zero]]) }]);
    expect(v.pass).toBe(false);
    expect(v.reasons.map((r) => r.code)).toEqual(['PCR_BANK_DUPLICATE']);
  });

  it('fails closed on a hand-built policy with no PCRs or with SHA-1 not allowed', () => {
    expect(appraisePcrs({ ...policy, pcrs: [] }, good())).toMatchObject({ pass: false, reasons: [{ code: 'POLICY_NO_PCRS' }] });
    const sha1: Policy = { ...policy, allowSha1: false, pcrs: [{ alg: 'sha1', index: 0, allowed: [Buffer.alloc(20)] }] };
    const quoted: PcrBank[] = [{ alg: 'sha1', values: new Map([[0, Buffer.alloc(20)]]) }];
    expect(appraisePcrs(sha1, quoted).reasons.map((r) => r.code)).toEqual(['SHA1_NOT_ALLOWED']);
    expect(appraisePcrs({ ...sha1, allowSha1: true }, quoted).pass).toBe(true);
  });
});

describe('requiredSelections', () => {
  it('lists banks in fixed order and PCRs ascending', () => {
    expect(requiredSelections(policy)).toEqual([
      { alg: 'sha256', pcrs: [0, 16] },
      { alg: 'sha384', pcrs: [4] },
    ]);
  });

  it('does not depend on the order of requirements and merges repeats', () => {
    const p: Policy = {
      ...policy,
      pcrs: [
        { alg: 'sha512', index: 9, allowed: [] },
        { alg: 'sha256', index: 7, allowed: [] },
        { alg: 'sha1', index: 3, allowed: [] },
        { alg: 'sha256', index: 1, allowed: [] },
        { alg: 'sha256', index: 7, allowed: [] },
      ],
    };
    expect(requiredSelections(p)).toEqual([
      { alg: 'sha1', pcrs: [3] },
      { alg: 'sha256', pcrs: [1, 7] },
      { alg: 'sha512', pcrs: [9] },
    ]);
  });
});
