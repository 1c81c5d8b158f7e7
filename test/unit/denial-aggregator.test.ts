/**
 * The counting of repeated refusals: the first of a key is recorded, identical ones are counted
 * and written as one record per window; grants and shutdown write the counts; memory is bounded
 * and nothing is dropped.
 */
import { describe, it, expect, beforeEach } from 'vitest';
import fc from 'fast-check';
import { DenialAggregator, type DenialAggregatorOptions } from '../../daemon/lease/denial-aggregator.js';
import type { WorkloadIdentity } from '../../daemon/base/workload-identity.js';
import type { AuditBody } from '../../daemon/audit/log.js';
import { attestd } from '../../daemon/gen/proto.js';
import { identityProto } from '../../daemon/lease/identity.js';

const Kind = attestd.audit.v1.LeaseDecision.Kind;
const Scope = attestd.audit.v1.DenialRepeats.Scope;
type Decision = attestd.audit.v1.LeaseDecision.$Properties;

const who = (pid: number, uid = 1000): WorkloadIdentity => ({ pid, uid, gid: uid, startTime: 77n, exePath: '/usr/bin/python3',
  exeSha256: Buffer.alloc(32, 1), cgroup: '/user.slice' });
const deny = (w: WorkloadIdentity, code = 'NO_MATCHING_RULE', epoch = 1, kind = Kind.DENY): Decision =>
  ({ kind, leaseId: '', epoch, workload: identityProto(w), reasonCode: code, reason: 'no policy rule matches this workload' });

let now: number;
let written: AuditBody[];
const make = (o: Partial<DenialAggregatorOptions> = {}) => new DenialAggregator({ now: () => now, write: (b) => written.push(b), ...o });
beforeEach(() => {
  now = 1_000_000;
  written = [];
});

describe('denial aggregator', () => {
  it('records the first refusal, counts identical ones and writes them as one record when the window ends', () => {
    const a = make();
    expect(a.note(deny(who(1)), who(1))).toBe('record');
    for (let i = 0; i < 500; i++) {
      now += 1;
      expect(a.note(deny(who(1)), who(1))).toBe('counted');
    }
    a.flushDue();
    expect(written).toHaveLength(0);
    now = 1_000_000 + 1000;
    a.flushDue();
    expect(written).toHaveLength(1);
    expect(written[0]!.leaseDecision).toMatchObject({ kind: Kind.DENY, reasonCode: 'NO_MATCHING_RULE', workload: { pid: 1 },
      repeats: { count: 500, firstMs: 1_000_001, lastMs: 1_000_500, scope: Scope.IDENTICAL } });
  });

  it('counts across epochs, writing the latest epoch, but keeps other codes, workloads and kinds apart', () => {
    const a = make();
    expect(a.note(deny(who(1)), who(1))).toBe('record');
    expect(a.note(deny(who(1), 'NO_MATCHING_RULE', 2), who(1))).toBe('counted');
    expect(a.note(deny(who(1), 'NOT_TRUSTED', 2), who(1))).toBe('record');
    expect(a.note(deny(who(2)), who(2))).toBe('record');
    expect(a.note(deny(who(1), 'NO_MATCHING_RULE', 2, Kind.RENEW_DENIED), who(1))).toBe('record');
    a.flushAll();
    expect(written).toHaveLength(1);
    expect(written[0]!.leaseDecision).toMatchObject({ epoch: 2, reasonCode: 'NO_MATCHING_RULE', repeats: { count: 1 } });
  });

  it('counts refusals that differ only in the reason\'s text (the GPU names a client asked for) together', () => {
    const a = make();
    const asking = (gpu: string): Decision => ({ ...deny(who(1)), reason: `the rule does not grant "${gpu}"` });
    expect(a.note(asking('GPU-1'), who(1))).toBe('record');
    for (let i = 0; i < 100; i++) expect(a.note(asking(`GPU-x${i}`), who(1))).toBe('counted');
    a.flushAll();
    expect(written[0]!.leaseDecision).toMatchObject({ reason: 'the rule does not grant "GPU-1"', repeats: { count: 100 } });
  });

  it('lets a uid open new keys only at a bounded rate: process after process of one user is counted into its bucket', () => {
    const a = make({ newKeysPerUid: 3, newKeyRefillMs: 1000 });
    const fates = Array.from({ length: 10 }, (_, i) => a.note(deny(who(100 + i)), who(100 + i)));
    expect(fates).toEqual(['record', 'record', 'record', ...Array(7).fill('counted')]);
    // Another uid is not held back by the first.
    expect(a.note(deny(who(7, 2000)), who(7, 2000))).toBe('record');
    now += 1000;
    expect(a.note(deny(who(200)), who(200))).toBe('record');
    expect(a.note(deny(who(201)), who(201))).toBe('counted');
    a.flushAll();
    // The bucket's first window (1 s) ended with 7; the next holds 1.
    expect(written.map((b) => [b.leaseDecision!.repeats!.scope, b.leaseDecision!.repeats!.count, b.leaseDecision!.workload!.uid]))
      .toEqual([[Scope.SAME_UID, 7, 1000], [Scope.SAME_UID, 1, 1000]]);
  });

  it('doubles the window while repeats go on, up to the limit, and forgets a quiet key', () => {
    const a = make({ windowMs: 1000, maxWindowMs: 4000 });
    a.note(deny(who(1)), who(1));
    const ends: number[] = [];
    for (let t = 0; t < 20_000; t += 100) {
      now = 1_000_000 + t;
      const before = written.length;
      a.flushDue();
      if (written.length > before) ends.push(t);
      a.note(deny(who(1)), who(1));
    }
    // Windows of 1, 2, 4, 4, 4 ... seconds.
    expect(ends.slice(0, 5)).toEqual([1000, 3000, 7000, 11_000, 15_000]);
    now += 10_000;
    a.flushDue();
    a.flushDue();
    now += 10_000;
    a.flushDue();
    expect(a.size).toBe(0);
    expect(a.note(deny(who(1)), who(1))).toBe('record');
  });

  it('writes a workload\'s counts before its grant and starts over after it', () => {
    const a = make();
    a.note(deny(who(1)), who(1));
    a.note(deny(who(1)), who(1));
    a.note(deny(who(2)), who(2));
    a.note(deny(who(2)), who(2));
    a.flushWorkload(who(1));
    expect(written.map((b) => b.leaseDecision!.workload!.pid)).toEqual([1]);
    expect(a.note(deny(who(1)), who(1))).toBe('record');
    expect(a.note(deny(who(2)), who(2))).toBe('counted');
  });

  it('past the table\'s size counts into the uid\'s bucket, then into one per code; nothing is dropped', () => {
    const a = make({ maxKeys: 2, maxBuckets: 1 });
    expect(a.note(deny(who(1)), who(1))).toBe('record');
    expect(a.note(deny(who(2)), who(2))).toBe('record');
    expect(a.note(deny(who(3)), who(3))).toBe('counted');
    expect(a.note(deny(who(4)), who(4))).toBe('counted');
    expect(a.note(deny(who(5, 2000), 'NOT_TRUSTED'), who(5, 2000))).toBe('counted');
    expect(a.size).toBe(4);
    a.flushAll();
    const counts = written.map((b) => [b.leaseDecision!.repeats!.scope, b.leaseDecision!.repeats!.count, b.leaseDecision!.workload?.uid]);
    expect(counts).toEqual([[Scope.SAME_UID, 2, 1000], [Scope.ANY, 1, undefined]]);
    expect(a.size).toBe(0);
  });

  it('property: every refusal is recorded or counted exactly once, and the table stays bounded', () => {
    const step = fc.oneof(
      fc.record({ op: fc.constant('deny' as const), pid: fc.integer({ min: 1, max: 12 }), uid: fc.integer({ min: 0, max: 3 }),
        code: fc.constantFrom('NO_MATCHING_RULE', 'NOT_TRUSTED', 'ATTESTATION_STALE'), kind: fc.constantFrom(Kind.DENY, Kind.RENEW_DENIED),
        epoch: fc.integer({ min: 1, max: 3 }), dt: fc.integer({ min: 0, max: 700 }) }),
      fc.record({ op: fc.constant('grant' as const), pid: fc.integer({ min: 1, max: 12 }), uid: fc.integer({ min: 0, max: 3 }) }),
      fc.record({ op: fc.constant('due' as const), dt: fc.integer({ min: 0, max: 5000 }) }),
    );
    fc.assert(fc.property(fc.array(step, { maxLength: 300 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 20 }), (steps, maxKeys, maxBuckets, newKeysPerUid) => {
        written = [];
        now = 1_000_000;
        const a = make({ maxKeys, maxBuckets, newKeysPerUid });
        let refusals = 0;
        let recorded = 0;
        for (const s of steps) {
          if (s.op === 'deny') {
            now += s.dt;
            refusals++;
            if (a.note(deny(who(s.pid, s.uid), s.code, s.epoch, s.kind), who(s.pid, s.uid)) === 'record') recorded++;
          } else if (s.op === 'grant') {
            a.flushWorkload(who(s.pid, s.uid));
          } else {
            now += s.dt;
            a.flushDue();
          }
          // Keys, per-uid buckets, and one bucket per (kind, code): 2 kinds x 3 codes here.
          expect(a.size).toBeLessThanOrEqual(maxKeys + maxBuckets + 6);
        }
        a.flushAll();
        let counted = 0;
        for (const b of written) {
          const r = b.leaseDecision!.repeats!;
          expect(r.count).toBeGreaterThan(0);
          expect(r.firstMs).toBeLessThanOrEqual(r.lastMs!);
          expect(r.lastMs).toBeLessThanOrEqual(now);
          counted += r.count!;
        }
        expect(recorded + counted).toBe(refusals);
      }), { numRuns: 300 });
  });
});
