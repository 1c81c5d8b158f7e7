import { describe, it, expect } from 'vitest';
import { UidQuota } from '../../daemon/api/uid-quota.js';

describe('UidQuota', () => {
  it('counts each uid against its own cap, root included', () => {
    const q = new UidQuota(2);
    expect(q.tryTake(0)).toBe(true);
    expect(q.tryTake(0)).toBe(true);
    expect(q.tryTake(0)).toBe(false);
    expect(q.tryTake(1000)).toBe(true);
    expect(q.held(0)).toBe(2);
    expect(q.held(1000)).toBe(1);
  });

  it('gives a slot back once per close and forgets uids at zero', () => {
    const q = new UidQuota(1);
    expect(q.tryTake(5)).toBe(true);
    expect(q.tryTake(5)).toBe(false);
    q.give(5);
    expect(q.held(5)).toBe(0);
    expect(q.tryTake(5)).toBe(true);
    q.give(5);
    q.give(5);
    expect(q.held(5)).toBe(0);
    expect(q.tryTake(5)).toBe(true);
    expect(q.tryTake(5)).toBe(false);
  });
});
