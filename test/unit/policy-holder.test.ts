import { describe, it, expect } from 'vitest';
import { PolicyHolder } from '../../daemon/policy/holder.js';
import type { LoadedPolicy } from '../../daemon/policy/types.js';

const loaded = (n: number): LoadedPolicy => ({ file: 'p.yaml', text: '', digest: Buffer.alloc(32, n),
  policy: { version: 1, intervalMs: 2000, maxAgeMs: 6000, allowSha1: false, pcrs: [], rules: [] } });

describe('policy holder', () => {
  it('holds either a valid policy or the problem that left none in force', () => {
    const h = new PolicyHolder();
    expect(h.current).toBeUndefined();
    expect(h.problem).toBeUndefined();
    h.load(loaded(1));
    expect(h.current?.digest).toEqual(Buffer.alloc(32, 1));
    h.reject('p.yaml:2:3: rules: required');
    expect(h.current).toBeUndefined(); // fail closed: the previous policy is not kept
    expect(h.problem).toBe('p.yaml:2:3: rules: required');
    h.load(loaded(2));
    expect(h.current?.digest).toEqual(Buffer.alloc(32, 2));
    expect(h.problem).toBeUndefined();
  });

  it('starts with the policy loaded at start', () => {
    expect(new PolicyHolder(loaded(3)).current?.digest).toEqual(Buffer.alloc(32, 3));
  });
});
