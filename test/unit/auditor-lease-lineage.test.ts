import { describe, expect, it } from 'vitest';
import { attestd } from '../../daemon/gen/proto.js';
import { LineageTracker } from '../../daemon/auditor/lease-lineage.js';

const T = attestd.lease.v1.LeaseToken;
const D = attestd.audit.v1.LeaseDecision;
const id = (c: string) => c.repeat(32);

/** A grant or renewal whose record and token agree, unless `record` says otherwise. */
function issue(kind: number, leaseId: string, token: Partial<attestd.lease.v1.ILeaseToken> = {}, record: Partial<attestd.audit.v1.ILeaseDecision> = {}) {
  const claims = T.create({ leaseId, rule: 'r', scopes: ['a', 'b'], gpus: ['GPU-1'], issuedAtMs: 1000, expiresAtMs: 9000, ...token });
  const d = D.create({ kind, leaseId, parentLeaseId: claims.parentLeaseId, rootLeaseId: claims.rootLeaseId, depth: claims.depth, ...record });
  return [d, claims] as const;
}
const child = (leaseId: string, parent: string, root: string, depth: number, more: Partial<attestd.lease.v1.ILeaseToken> = {}) =>
  issue(D.Kind.GRANT, leaseId, { parentLeaseId: parent, rootLeaseId: root, depth, scopes: ['a'], expiresAtMs: 8000, ...more });

describe('audit lease-lineage', () => {
  it('accepts acquired leases and three generations derived within their parents', () => {
    const t = new LineageTracker();
    expect(t.issued(...issue(D.Kind.GRANT, id('a')))).toBeUndefined();
    expect(t.issued(...child(id('b'), id('a'), id('a'), 1))).toBeUndefined();
    expect(t.issued(...child(id('c'), id('b'), id('a'), 2))).toBeUndefined();
    expect(t.issued(...issue(D.Kind.RENEW, id('c'), { parentLeaseId: id('b'), rootLeaseId: id('a'), depth: 2, scopes: ['a'], expiresAtMs: 8000 }))).toBeUndefined();
  });

  it('refuses a record disagreeing with its token, an unknown or ended parent, wrong depth or root, wider scopes or GPUs, a later expiry', () => {
    const base = () => {
      const t = new LineageTracker();
      t.issued(...issue(D.Kind.GRANT, id('a')));
      return t;
    };
    const [record, claims] = child(id('b'), id('a'), id('a'), 1);
    expect(base().issued(D.create({ ...record, depth: 2 }), claims)).toMatch(/differs from its token/);
    expect(base().issued(...child(id('b'), id('f'), id('f'), 1))).toMatch(/not granted/);
    expect(base().issued(...child(id('b'), id('a'), id('a'), 2))).toMatch(/depth/);
    expect(base().issued(...child(id('b'), id('a'), id('e'), 1))).toMatch(/root/);
    expect(base().issued(...child(id('b'), id('a'), id('a'), 1, { scopes: ['z'] }))).toMatch(/beyond/);
    expect(base().issued(...child(id('b'), id('a'), id('a'), 1, { gpus: ['GPU-2'] }))).toMatch(/beyond/);
    expect(base().issued(...child(id('b'), id('a'), id('a'), 1, { expiresAtMs: 9001 }))).toMatch(/expires after/);
    expect(base().issued(...child(id('b'), id('a'), id('a'), 1, { issuedAtMs: 9000 }))).toMatch(/ended/);
    const released = base();
    released.ended(D.create({ kind: D.Kind.RELEASE, leaseId: id('a') }));
    expect(released.issued(...child(id('b'), id('a'), id('a'), 1))).toMatch(/ended/);
  });

  it('refuses a depth beyond the rule\'s lineage.max_depth under the recorded policy', () => {
    const t = new LineageTracker();
    t.issued(...issue(D.Kind.GRANT, id('a')), 0);
    expect(t.issued(...child(id('b'), id('a'), id('a'), 1), 0)).toMatch(/max_depth 0/);
    expect(t.issued(...child(id('b'), id('a'), id('a'), 1), 1)).toBeUndefined();
  });

  it('a lease whose ancestor ended must end before the next grant or renewal', () => {
    const t = new LineageTracker();
    t.issued(...issue(D.Kind.GRANT, id('a')));
    t.issued(...child(id('b'), id('a'), id('a'), 1));
    t.issued(...child(id('c'), id('b'), id('a'), 2));
    t.ended(D.create({ kind: D.Kind.REVOKE, leaseIds: [id('a')] }));
    expect(t.issued(...issue(D.Kind.GRANT, id('d')))).toMatch(/outlived its ancestor/);
    t.ended(D.create({ kind: D.Kind.REVOKE, leaseIds: [id('b'), id('c')], reasonCode: 'ANCESTOR_ENDED' }));
    expect(t.issued(...issue(D.Kind.GRANT, id('d')))).toBeUndefined();
  });
});

describe('audit explain: lineage', () => {
  it('names ancestors parent first and every descendant; nothing for a lease without lineage', async () => {
    const { LineageIndex } = await import('../../daemon/auditor/explain-lineage.js');
    const x = new LineageIndex();
    x.granted(id('b'), id('a'), 1);
    x.granted(id('c'), id('b'), 2);
    x.granted(id('d'), id('a'), 1);
    x.granted(id('e'), id('f'), 1);
    expect(x.story(id('c'))).toEqual({ depth: 2, ancestors: [id('b'), id('a')], descendants: [] });
    expect(x.story(id('a'))).toEqual({ depth: 0, ancestors: [], descendants: [
      { leaseId: id('b'), parentLeaseId: id('a'), depth: 1 }, { leaseId: id('c'), parentLeaseId: id('b'), depth: 2 },
      { leaseId: id('d'), parentLeaseId: id('a'), depth: 1 }] });
    expect(x.story(id('9'))).toBeUndefined();
  });
});
