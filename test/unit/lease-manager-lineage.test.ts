import { describe, it, expect, beforeEach } from 'vitest';
import { generateKeyPairSync, sign as edSign } from 'node:crypto';
import { LeaseManager } from '../../daemon/lease/manager.js';
import { PolicyHolder } from '../../daemon/policy/holder.js';
import type { LeaseEvent } from '../../daemon/lease/types.js';
import type { EpochState } from '../../daemon/appraisal/epoch-state.js';
import type { LoadedPolicy } from '../../daemon/policy/types.js';
import type { WorkloadIdentity } from '../../daemon/base/workload-identity.js';
import type { AuditBody } from '../../daemon/audit/log.js';
import { ed25519PublicKey, TOKEN_CONTEXT, verifyLeaseToken } from '../../daemon/verify/lease-token.js';
import { attestd } from '../../daemon/gen/proto.js';
import { childGpus, childLink, childScopes } from '../../daemon/lease/lineage.js';
import { AttestdError } from '../../daemon/base/errors.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const rawPub = publicKey.export({ format: 'jwk' }).x!;
const signer = { sign: (d: Uint8Array) => edSign(null, d, privateKey), publicKey: () => Buffer.from(rawPub, 'base64url') };

const policy: LoadedPolicy = {
  file: 'p.yaml', text: '', digest: Buffer.alloc(32, 7),
  policy: { version: 2, intervalMs: 2000, maxAgeMs: 6000, allowSha1: false, pcrs: [],
    rules: [
      { name: 'trainer', match: { uids: [1000] }, ttlMs: 30_000, scopes: ['gpu:all', 'net'], lineage: { maxDepth: 2 } },
      { name: 'flat', match: { uids: [2000] }, ttlMs: 30_000, scopes: ['x'] },
    ] },
};
const alice: WorkloadIdentity = { pid: 4242, uid: 1000, gid: 1000, startTime: 77n, exePath: '/usr/bin/python3', exeSha256: Buffer.alloc(32, 1), cgroup: '/u' };
const child: WorkloadIdentity = { ...alice, pid: 4300, startTime: 80n, exePath: '/bin/sh', exeSha256: Buffer.alloc(32, 2) };
const grandchild: WorkloadIdentity = { ...alice, pid: 4301, startTime: 81n, exePath: '/bin/sleep', exeSha256: Buffer.alloc(32, 3) };
const passing = (epoch: number, at: number): EpochState => ({ epoch, pass: true, reasons: [], appraisedAtMs: at, validUntilMs: at + 6000, policyDigest: policy.digest });
const all = { scopes: [], gpus: [] };
const is = (who: WorkloadIdentity) => async () => who;

let now: number;
let records: AuditBody[];
let m: LeaseManager;
let policies: PolicyHolder;
beforeEach(() => {
  now = 1_000_000;
  records = [];
  policies = new PolicyHolder(policy);
  m = new LeaseManager({ signer, now: () => now, policy: policies,
    audit: async (b) => { records.push(b); return records.length - 1; } });
  m.applyEpoch(passing(1, now));
});
const settle = () => new Promise((r) => setImmediate(r));

describe('lineage checks', () => {
  const parent = { id: 'p'.repeat(32), scopes: ['a', 'b'], gpus: ['GPU-1', 'GPU-2'] };
  const rule = policy.policy.rules[0]!;
  it('a child is one generation deeper, rooted at the acquired lease, within max_depth', () => {
    expect(childLink(parent, rule)).toEqual({ parentId: parent.id, rootId: parent.id, depth: 1 });
    expect(childLink({ ...parent, lineage: { parentId: 'q', rootId: 'r', depth: 1 } }, rule)).toEqual({ parentId: parent.id, rootId: 'r', depth: 2 });
    expect(() => childLink({ ...parent, lineage: { parentId: 'q', rootId: 'r', depth: 2 } }, rule)).toThrow(expect.objectContaining({ code: 'LINEAGE_TOO_DEEP' }));
    expect(() => childLink(parent, policy.policy.rules[1]!)).toThrow(expect.objectContaining({ code: 'LINEAGE_NOT_ALLOWED' }));
  });
  it('scopes and GPUs are a subset of the parent\'s; none asked is all of them', () => {
    expect(childScopes(parent, [])).toEqual(['a', 'b']);
    expect(childScopes(parent, ['b', 'b'])).toEqual(['b']);
    expect(() => childScopes(parent, ['a', 'c'])).toThrow(AttestdError);
    const epoch = { ...passing(1, 0), gpu: { gpus: [{ index: 1, uuid: 'GPU-2' }] } } as unknown as EpochState;
    expect(childGpus(parent, ['1'], epoch)).toEqual(['GPU-2']);
    expect(childGpus(parent, ['gpu-1'], epoch)).toEqual(['GPU-1']);
    expect(() => childGpus(parent, ['GPU-3'], epoch)).toThrow(expect.objectContaining({ code: 'LINEAGE_NOT_SUBSET' }));
    expect(() => childGpus({ ...parent, gpus: [] }, ['0'], epoch)).toThrow(expect.objectContaining({ code: 'LINEAGE_NOT_SUBSET' }));
  });
});

describe('lineage in a token', () => {
  const sign = (fields: Record<string, unknown>) => {
    const token = attestd.lease.v1.LeaseToken.encode({ version: 1, leaseId: 'a'.repeat(32), sessionPublicKey: signer.publicKey(), ...fields }).finish();
    return verifyLeaseToken(token, signer.sign(Buffer.concat([TOKEN_CONTEXT, token])), ed25519PublicKey(signer.publicKey()), signer.publicKey());
  };
  it('is all or nothing, and consistent, or the token does not verify though signed', () => {
    expect(sign({})).toBeDefined();
    expect(sign({ parentLeaseId: 'b'.repeat(32), rootLeaseId: 'b'.repeat(32), depth: 1 })).toBeDefined();
    expect(sign({ parentLeaseId: 'b'.repeat(32), rootLeaseId: 'c'.repeat(32), depth: 2 })).toBeDefined();
    for (const bad of [{ depth: 1 }, { parentLeaseId: 'b'.repeat(32) }, { rootLeaseId: 'b'.repeat(32) },
      { parentLeaseId: 'b'.repeat(32), rootLeaseId: 'c'.repeat(32), depth: 1 }, { parentLeaseId: 'b'.repeat(32), rootLeaseId: 'b'.repeat(32), depth: 2 },
      { parentLeaseId: 'B'.repeat(32), rootLeaseId: 'B'.repeat(32), depth: 1 }, { parentLeaseId: 'a'.repeat(32), rootLeaseId: 'a'.repeat(32), depth: 1 }]) {
      expect(sign(bad)).toBeUndefined();
    }
  });
});

describe('lease manager: derive', () => {
  it('derives three generations; tokens carry parent, root and depth; records name them; depth limit refuses the fourth', async () => {
    const root = await m.acquire(alice);
    const c = await m.derive(alice, root.leaseId, is(child), { scopes: ['net'], gpus: [] });
    expect(c.scopes).toEqual(['net']);
    const g = await m.derive(child, c.leaseId, is(grandchild), all);
    expect(g.scopes).toEqual(['net']);
    const key = ed25519PublicKey(signer.publicKey());
    const claims = verifyLeaseToken(g.token.token, g.token.signature, key, signer.publicKey())!;
    expect(claims).toMatchObject({ parentLeaseId: c.leaseId, rootLeaseId: root.leaseId, depth: 2, rule: 'trainer' });
    expect(claims.workload).toMatchObject({ pid: grandchild.pid });
    expect(records.at(-1)!.leaseDecision).toMatchObject({ kind: 1, leaseId: g.leaseId, parentLeaseId: c.leaseId, rootLeaseId: root.leaseId, depth: 2 });
    const deeper = { ...grandchild, pid: 4302 };
    await expect(m.derive(grandchild, g.leaseId, is(deeper), all)).rejects.toMatchObject({ code: 'LINEAGE_TOO_DEEP' });
    expect(records.at(-1)!.leaseDecision).toMatchObject({ kind: 2, reasonCode: 'LINEAGE_TOO_DEEP' });
  });

  it('only the parent\'s holder process derives; scopes, GPUs must be a subset; the child refused by the kernel check is recorded', async () => {
    const root = await m.acquire(alice);
    await expect(m.derive({ ...alice, pid: 9 }, root.leaseId, is(child), all)).rejects.toMatchObject({ code: 'IDENTITY_MISMATCH' });
    await expect(m.derive(alice, root.leaseId, is(child), { scopes: ['root'], gpus: [] })).rejects.toMatchObject({ code: 'LINEAGE_NOT_SUBSET' });
    await expect(m.derive(alice, root.leaseId, is(child), { scopes: [], gpus: ['0'] })).rejects.toMatchObject({ code: 'LINEAGE_NOT_SUBSET' });
    const notMine = async (): Promise<WorkloadIdentity> => { throw new AttestdError('LINEAGE_NOT_DESCENDANT', 'no'); };
    await expect(m.derive(alice, root.leaseId, notMine, all)).rejects.toMatchObject({ code: 'LINEAGE_NOT_DESCENDANT' });
    expect(records.at(-1)!.leaseDecision).toMatchObject({ kind: 2, reasonCode: 'LINEAGE_NOT_DESCENDANT' });
    // The rule must match the child too: another user's process gets no lease under it.
    await expect(m.derive(alice, root.leaseId, is({ ...child, uid: 2000 }), all)).rejects.toMatchObject({ code: 'NO_MATCHING_RULE' });
    expect(m.activeCount).toBe(1);
  });

  it('a rule without lineage derives nothing', async () => {
    const bob = { ...alice, uid: 2000, gid: 2000 };
    const root = await m.acquire(bob);
    await expect(m.derive(bob, root.leaseId, is({ ...child, uid: 2000 }), all)).rejects.toMatchObject({ code: 'LINEAGE_NOT_ALLOWED' });
  });

  it('a child never outlives its parent: expiry capped at grant and renewal, renewal refused once the parent ended', async () => {
    const root = await m.acquire(alice);
    now += 2000;
    m.applyEpoch(passing(2, now));
    const c = await m.derive(alice, root.leaseId, is(child), all);
    expect(c.expiresAtMs).toBe(root.expiresAtMs);
    now += 1000;
    m.applyEpoch(passing(3, now));
    const renewed = await m.renew(child, c.leaseId);
    expect(renewed.expiresAtMs).toBe(root.expiresAtMs);
    expect(renewed.scopes).toEqual(['gpu:all', 'net']);
  });

  it('renews a derived lease only while the rule as it is now allows its depth', async () => {
    const root = await m.acquire(alice);
    const c = await m.derive(alice, root.leaseId, is(child), all);
    const [trainer, flat] = policy.policy.rules;
    policies.load({ ...policy, policy: { ...policy.policy, rules: [{ ...trainer!, lineage: undefined }, flat!] } });
    await expect(m.renew(child, c.leaseId)).rejects.toMatchObject({ code: 'LINEAGE_NOT_ALLOWED' });
    expect(records.at(-1)!.leaseDecision).toMatchObject({ kind: 4, leaseId: c.leaseId, reasonCode: 'LINEAGE_NOT_ALLOWED' });
    expect((await m.renew(alice, root.leaseId)).leaseId).toBe(root.leaseId);
    policies.load(policy);
    expect((await m.renew(child, c.leaseId)).leaseId).toBe(c.leaseId);
  });

  it('release of a parent ends every descendant at once: ANCESTOR_ENDED naming it, told and recorded', async () => {
    const root = await m.acquire(alice);
    const c = await m.derive(alice, root.leaseId, is(child), all);
    const g = await m.derive(child, c.leaseId, is(grandchild), all);
    const events: LeaseEvent[] = [];
    m.watch(grandchild, g.leaseId, (e) => events.push(e));
    await m.release(alice, root.leaseId);
    expect(m.activeCount).toBe(0);
    expect(events).toEqual([{ kind: 'REVOKED', leaseId: g.leaseId, reasonCode: 'ANCESTOR_ENDED', reason: `ancestor lease ${root.leaseId} ended` }]);
    await settle();
    const revoke = records.find((r) => r.leaseDecision?.kind === 6)!.leaseDecision!;
    expect(revoke).toMatchObject({ reasonCode: 'ANCESTOR_ENDED', reason: `ancestor lease ${root.leaseId} ended` });
    expect([...revoke.leaseIds!].sort()).toEqual([c.leaseId, g.leaseId].sort());
    await expect(m.renew(child, c.leaseId)).rejects.toMatchObject({ code: 'LEASE_NOT_FOUND' });
  });

  it('a failed epoch revokes the root with its code and its descendants with ANCESTOR_ENDED; a GPU-free sibling root is revoked too', async () => {
    const root = await m.acquire(alice);
    const other = await m.acquire({ ...alice, pid: 5000 });
    const c = await m.derive(alice, root.leaseId, is(child), all);
    m.applyEpoch({ ...passing(2, now), pass: false, reasons: [{ code: 'NOT_TRUSTED', message: 'PCR 16 drift' }] });
    expect(m.activeCount).toBe(0);
    await settle();
    const revokes = records.filter((r) => r.leaseDecision?.kind === 6).map((r) => r.leaseDecision!);
    expect(revokes[0]).toMatchObject({ reasonCode: 'NOT_TRUSTED', leaseIds: [root.leaseId, other.leaseId] });
    expect(revokes[1]).toMatchObject({ reasonCode: 'ANCESTOR_ENDED', reason: `ancestor lease ${root.leaseId} ended`, leaseIds: [c.leaseId] });
  });

  it('the parent\'s expiry and its holder\'s exit end the descendants', async () => {
    const alive = new Set([alice.pid, child.pid]);
    const h = new LeaseManager({ signer, now: () => now, policy: new PolicyHolder(policy), holderAlive: (w) => alive.has(w.pid),
      audit: async (b) => { records.push(b); return records.length - 1; } });
    h.applyEpoch(passing(1, now));
    const root = await h.acquire(alice);
    const c = await h.derive(alice, root.leaseId, is(child), all);
    alive.delete(alice.pid);
    h.endExitedHolders();
    expect(h.isLive(c.leaseId)).toBe(false);
    await settle();
    expect(records.at(-1)!.leaseDecision).toMatchObject({ reasonCode: 'ANCESTOR_ENDED', leaseIds: [c.leaseId] });
    alive.add(alice.pid);
    const root2 = await h.acquire(alice);
    const c2 = await h.derive(alice, root2.leaseId, is(child), all);
    // The child's expiry is the parent's at most: both end in the same sweep.
    now += 6001;
    h.sweep();
    expect(h.isLive(root2.leaseId)).toBe(false);
    expect(h.isLive(c2.leaseId)).toBe(false);
    expect(h.activeCount).toBe(0);
  });

  it('a parent that expires first (renewed to a shorter term) takes its child with it', async () => {
    const root = await m.acquire(alice);
    const c = await m.derive(alice, root.leaseId, is(child), all);
    const events: LeaseEvent[] = [];
    m.watch(child, c.leaseId, (e) => events.push(e));
    now += 1000;
    m.applyEpoch(passing(2, now));
    const [trainer, flat] = policy.policy.rules;
    policies.load({ ...policy, policy: { ...policy.policy, rules: [{ ...trainer!, ttlMs: 2000 }, flat!] } });
    const renewed = await m.renew(alice, root.leaseId);
    expect(renewed.expiresAtMs).toBeLessThan(c.expiresAtMs);
    now = renewed.expiresAtMs + 1;
    m.sweep();
    expect(m.isLive(root.leaseId)).toBe(false);
    expect(m.isLive(c.leaseId)).toBe(false);
    expect(events).toEqual([{ kind: 'REVOKED', leaseId: c.leaseId, reasonCode: 'ANCESTOR_ENDED', reason: `ancestor lease ${root.leaseId} ended` }]);
    await settle();
    const kinds = records.slice(-2).map((r) => r.leaseDecision!.kind);
    expect(kinds).toEqual([7, 6]);
  });

  it('a derivation in flight when its parent ends is not granted', async () => {
    const root = await m.acquire(alice);
    let release!: () => void;
    const slow = () => new Promise<WorkloadIdentity>((r) => { release = () => r(child); });
    const pending = m.derive(alice, root.leaseId, slow, all);
    await settle();
    await m.release(alice, root.leaseId);
    release();
    await expect(pending).rejects.toMatchObject({ code: 'ANCESTOR_ENDED' });
    expect(m.activeCount).toBe(0);
  });
});
