import { describe, it, expect, beforeEach } from 'vitest';
import { generateKeyPairSync, sign as edSign } from 'node:crypto';
import { LeaseManager } from '../../daemon/lease/manager.js';
import { PolicyHolder } from '../../daemon/policy/holder.js';
import type { LeaseEvent } from '../../daemon/lease/types.js';
import type { EpochState } from '../../daemon/appraisal/epoch-state.js';
import type { LoadedPolicy } from '../../daemon/policy/types.js';
import type { WorkloadIdentity } from '../../daemon/base/workload-identity.js';
import type { AuditBody } from '../../daemon/audit/log.js';
import { ed25519PublicKey, verifyLeaseToken } from '../../daemon/verify/lease-token.js';

// A signer over node:crypto so these tests do not need the native build.
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const rawPub = publicKey.export({ format: 'jwk' }).x!;
const signer = { sign: (d: Uint8Array) => edSign(null, d, privateKey), publicKey: () => Buffer.from(rawPub, 'base64url') };

const policy: LoadedPolicy = {
  file: 'p.yaml', text: '', digest: Buffer.alloc(32, 7),
  policy: { version: 1, intervalMs: 2000, maxAgeMs: 6000, allowSha1: false, pcrs: [],
    rules: [
      { name: 'trainer', match: { uids: [1000] }, ttlMs: 30_000, scopes: ['gpu:all'] },
      { name: 'root', match: { uids: [0] }, ttlMs: 5_000, scopes: [] },
    ] },
};
const alice: WorkloadIdentity = { pid: 4242, uid: 1000, gid: 1000, startTime: 77n, exePath: '/usr/bin/python3', exeSha256: Buffer.alloc(32, 1), cgroup: '/user.slice' };
const passing = (epoch: number, at: number): EpochState => ({ epoch, pass: true, reasons: [], appraisedAtMs: at, validUntilMs: at + 6000, policyDigest: policy.digest });

let now: number;
let records: AuditBody[];
let auditFails: boolean;
let policies: PolicyHolder;
let m: LeaseManager;
beforeEach(() => {
  now = 1_000_000;
  records = [];
  auditFails = false;
  policies = new PolicyHolder(policy);
  m = new LeaseManager({
    signer, now: () => now, policy: policies,
    audit: async (b) => {
      if (auditFails) throw new Error('ENOSPC');
      records.push(b);
      return records.length - 1;
    },
  });
});

describe('lease manager', () => {
  it('refuses before any epoch, and records the denial', async () => {
    await expect(m.acquire(alice)).rejects.toMatchObject({ code: 'NOT_TRUSTED' });
    expect(records[0]!.leaseDecision).toMatchObject({ kind: 2, reasonCode: 'NOT_TRUSTED' });
  });

  it('grants under a passing epoch a signed token capped at the epoch validity', async () => {
    m.applyEpoch(passing(1, now));
    const lease = await m.acquire(alice);
    expect(lease.rule).toBe('trainer');
    expect(lease.expiresAtMs).toBe(now + 6000); // min(now + 30 s TTL, epoch valid until)
    const claims = verifyLeaseToken(lease.token.token, lease.token.signature, ed25519PublicKey(signer.publicKey()), signer.publicKey());
    expect(claims).toMatchObject({ leaseId: lease.leaseId, epoch: 1, rule: 'trainer', scopes: ['gpu:all'] });
    expect(claims!.workload).toMatchObject({ pid: 4242, uid: 1000 });
    expect(records.at(-1)!.leaseDecision).toMatchObject({ kind: 1, leaseId: lease.leaseId });
    const tampered = Buffer.from(lease.token.token);
    tampered[tampered.length - 1] = tampered[tampered.length - 1]! ^ 1;
    expect(verifyLeaseToken(tampered, lease.token.signature, ed25519PublicKey(signer.publicKey()), signer.publicKey())).toBeUndefined();
  });

  it('refuses a caller no rule matches, and a stale epoch', async () => {
    m.applyEpoch(passing(1, now));
    await expect(m.acquire({ ...alice, uid: 5 })).rejects.toMatchObject({ code: 'NO_MATCHING_RULE' });
    await expect(m.acquire(alice, 'root')).rejects.toMatchObject({ code: 'NO_MATCHING_RULE' });
    now += 6001;
    await expect(m.acquire(alice)).rejects.toMatchObject({ code: 'ATTESTATION_STALE' });
  });

  it('grants nothing when the decision cannot be recorded', async () => {
    m.applyEpoch(passing(1, now));
    auditFails = true;
    await expect(m.acquire(alice)).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    expect(m.activeCount).toBe(0);
  });

  it('renews only for the same process under a passing epoch', async () => {
    m.applyEpoch(passing(1, now));
    const lease = await m.acquire(alice);
    now += 1000;
    m.applyEpoch(passing(2, now));
    await expect(m.renew({ ...alice, startTime: 78n }, lease.leaseId)).rejects.toMatchObject({ code: 'IDENTITY_MISMATCH' });
    await expect(m.renew({ ...alice, exeSha256: Buffer.alloc(32, 2) }, lease.leaseId)).rejects.toMatchObject({ code: 'IDENTITY_MISMATCH' });
    const renewed = await m.renew(alice, lease.leaseId);
    expect(renewed.expiresAtMs).toBe(now + 6000);
    expect(records.at(-1)!.leaseDecision).toMatchObject({ kind: 3, epoch: 2 });
    auditFails = true;
    await expect(m.renew(alice, lease.leaseId)).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
  });

  it('revokes every lease at once when an epoch fails and tells watchers', async () => {
    m.applyEpoch(passing(1, now));
    const a = await m.acquire(alice);
    const b = await m.acquire({ ...alice, pid: 4343 });
    const events: LeaseEvent[] = [];
    m.watch(alice, a.leaseId, (e) => events.push(e));
    m.watch({ ...alice, pid: 1 }, b.leaseId, (e) => events.push(e)); // same uid may watch
    expect(() => m.watch({ ...alice, uid: 1001 }, b.leaseId, () => undefined)).toThrow(expect.objectContaining({ code: 'IDENTITY_MISMATCH' }));
    m.applyEpoch({ epoch: 2, pass: false, reasons: [{ code: 'PCR_MISMATCH', message: 'PCR sha256:16 changed' }], appraisedAtMs: now, validUntilMs: 0, policyDigest: policy.digest });
    expect(events.map((e) => e.kind)).toEqual(['REVOKED', 'REVOKED']);
    expect(events[0]).toMatchObject({ reasonCode: 'NOT_TRUSTED', reason: 'PCR sha256:16 changed' });
    expect(m.activeCount).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect(records.at(-1)!.leaseDecision).toMatchObject({ kind: 6, count: 2 });
    await expect(m.renew(alice, a.leaseId)).rejects.toMatchObject({ code: 'LEASE_NOT_FOUND' });
    await expect(m.acquire(alice)).rejects.toMatchObject({ code: 'NOT_TRUSTED' });
    m.applyEpoch(passing(3, now));
    expect((await m.acquire(alice)).leaseId).not.toBe(a.leaseId);
  });

  it('revokes a grant that was in flight when the epoch failed', async () => {
    m.applyEpoch(passing(1, now));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = new LeaseManager({ signer, now: () => now, policy: policies, audit: async () => { await gate; return 0; } });
    slow.applyEpoch(passing(1, now));
    const pending = slow.acquire(alice);
    slow.failEpoch('TPM_UNAVAILABLE', 'TPM gone');
    release();
    await expect(pending).rejects.toMatchObject({ code: 'TPM_UNAVAILABLE' });
    expect(slow.activeCount).toBe(0);
  });

  it('expires leases in the sweep, warns a quarter TTL ahead, and revokes on staleness', async () => {
    m.applyEpoch(passing(1, now));
    const lease = await m.acquire(alice, 'trainer');
    const events: string[] = [];
    m.watch(alice, lease.leaseId, (e) => events.push(e.kind));
    now += 6000 - 1000; // 1 s left of a 6 s lease (capped by the epoch): inside its last quarter
    m.sweep();
    expect(events).toEqual(['EXPIRING']);
    now += 1000; // at the lease's expiry, the epoch's last valid instant
    m.sweep();
    expect(events).toEqual(['EXPIRING', 'EXPIRED']);
    expect(m.epoch!.pass).toBe(true);
    now += 1;
    m.sweep();
    expect(m.epoch!.pass).toBe(false); // staleness fails the epoch
    await expect(m.acquire(alice)).rejects.toMatchObject({ code: 'ATTESTATION_STALE' });
    expect(m.isLive(lease.leaseId)).toBe(false);
  });

  it('decides under the policy in force at the time of each call', async () => {
    m.applyEpoch(passing(1, now));
    const lease = await m.acquire(alice);
    policies.reject('policy.yaml:3: bad');
    await expect(m.acquire(alice)).rejects.toMatchObject({ code: 'NOT_TRUSTED', message: 'no valid policy' });
    await expect(m.renew(alice, lease.leaseId)).rejects.toMatchObject({ code: 'NOT_TRUSTED', message: 'no valid policy' });
    policies.load({ ...policy, policy: { ...policy.policy, rules: [policy.policy.rules[1]!] } });
    await expect(m.renew(alice, lease.leaseId)).rejects.toMatchObject({ code: 'NO_MATCHING_RULE', message: 'the lease rule no longer matches' });
    expect(records.at(-1)!.leaseDecision).toMatchObject({ kind: 4, leaseId: lease.leaseId, reasonCode: 'NO_MATCHING_RULE' });
    policies.load(policy);
    expect((await m.renew(alice, lease.leaseId)).leaseId).toBe(lease.leaseId);
  });

  it('calls only the current token of a lease live: a renewal supersedes the earlier ones', async () => {
    m.applyEpoch(passing(1, now));
    const lease = await m.acquire(alice);
    expect(m.isLive(lease.leaseId, lease.token.token)).toBe(true);
    m.applyEpoch(passing(2, now));
    const renewed = await m.renew(alice, lease.leaseId);
    expect(m.isLive(lease.leaseId, renewed.token.token)).toBe(true);
    expect(m.isLive(lease.leaseId, lease.token.token)).toBe(false);
    now += 60_000;
    expect(m.isLive(lease.leaseId, renewed.token.token)).toBe(false);
  });

  it('after a policy reload, grants only under an epoch of the new policy: it waits for one, or refuses with POLICY_PENDING', async () => {
    m.applyEpoch(passing(1, now));
    const lease = await m.acquire(alice);
    const next: LoadedPolicy = { ...policy, digest: Buffer.alloc(32, 8), policy: { ...policy.policy, maxAgeMs: 200 } };
    policies.load(next);
    // Waits for the epoch the reload triggers, then grants under it.
    const waiting = m.acquire(alice);
    await new Promise((r) => setTimeout(r, 20));
    m.applyEpoch({ ...passing(2, now), policyDigest: next.digest });
    const granted = await waiting;
    expect(granted.rule).toBe('trainer');
    // Another reload, and no epoch comes: refused once the wait (the policy's max_age here) ends.
    policies.load({ ...policy, digest: Buffer.alloc(32, 9), policy: { ...policy.policy, maxAgeMs: 200 } });
    await expect(m.renew(alice, lease.leaseId)).rejects.toMatchObject({ code: 'POLICY_PENDING' });
    expect(records.at(-1)!.leaseDecision).toMatchObject({ kind: 4, leaseId: lease.leaseId, reasonCode: 'POLICY_PENDING' });
    await expect(m.acquire(alice)).rejects.toMatchObject({ code: 'POLICY_PENDING' });
  });

  it('re-resolves the rule\'s GPUs at renewal: a GPU the rule no longer grants ends it', async () => {
    const gpu = (uuid: string, index: number) => ({ index, uuid, name: 'NVIDIA H100', serial: '', pciBusId: '', vbiosVersion: '',
      inforomImageVersion: '', eccModeCurrent: 'enabled', migModeCurrent: 'disabled', persistenceMode: 'enabled', ccMode: 'on' });
    const measurement = { source: 'nvml', driverVersion: '550', nvmlVersion: '12', cudaDriverVersion: '12040', procDriverVersion: '550',
      gpus: [gpu('GPU-a', 0), gpu('GPU-b', 1)], ccState: { environment: 'prod', ccFeature: 'enabled', devToolsMode: 'disabled', gpusReady: 'ready' },
      moduleDigests: [], firmwareDigests: [] } as unknown as EpochState['gpu'];
    const withGpus = (gpus: 'all' | number[]): LoadedPolicy => ({ ...policy, policy: { ...policy.policy,
      rules: [{ ...policy.policy.rules[0]!, gpus }] } });
    policies.load(withGpus('all'));
    m.applyEpoch({ ...passing(1, now), gpu: measurement });
    const lease = await m.acquire(alice, 'trainer', ['1']);
    expect(lease.gpus).toEqual(['GPU-b']);
    policies.load(withGpus([0]));
    m.applyEpoch({ ...passing(2, now), gpu: measurement });
    await expect(m.renew(alice, lease.leaseId)).rejects.toMatchObject({ code: 'NO_MATCHING_RULE' });
  });

  it('ends the leases of a holder that exited, at once, with HOLDER_EXITED, told, recorded and counted', async () => {
    const alive = new Set([alice.pid]);
    const counted: unknown[][] = [];
    const h = new LeaseManager({ signer, now: () => now, policy: policies, holderAlive: (who) => alive.has(who.pid),
      onDecision: (...args) => counted.push(args), audit: async (b) => { records.push(b); return records.length - 1; } });
    h.applyEpoch(passing(1, now));
    const bob = { ...alice, pid: 5151 };
    alive.add(bob.pid);
    const mine = await h.acquire(alice);
    const his = await h.acquire(bob);
    const events: LeaseEvent[] = [];
    h.watch(alice, mine.leaseId, (e) => events.push(e));
    h.endExitedHolders();
    expect(h.activeCount).toBe(2);
    alive.delete(alice.pid);
    h.endExitedHolders();
    expect(h.isLive(mine.leaseId)).toBe(false);
    expect(h.isLive(his.leaseId)).toBe(true);
    expect(events).toEqual([{ kind: 'REVOKED', leaseId: mine.leaseId, reasonCode: 'HOLDER_EXITED', reason: 'the holder process exited' }]);
    await new Promise((r) => setImmediate(r));
    expect(records.at(-1)!.leaseDecision).toMatchObject({ kind: 6, reasonCode: 'HOLDER_EXITED', leaseIds: [mine.leaseId] });
    expect(counted).toContainEqual(['revoked', 'HOLDER_EXITED', 1]);
  });

  it('releases for the holder and refuses strangers', async () => {
    m.applyEpoch(passing(1, now));
    const lease = await m.acquire(alice);
    await expect(m.release({ ...alice, uid: 2000 }, lease.leaseId)).rejects.toMatchObject({ code: 'IDENTITY_MISMATCH' });
    await m.release(alice, lease.leaseId);
    expect(m.isLive(lease.leaseId)).toBe(false);
    await expect(m.release(alice, lease.leaseId)).rejects.toMatchObject({ code: 'LEASE_NOT_FOUND' });
  });
});

describe('repeated refusals and the audit log budget', () => {
  it('records the first of identical refusals and counts the rest into one record; every caller hears the code at once', async () => {
    m.applyEpoch(passing(1, now));
    const bob = { ...alice, uid: 5 };
    for (let i = 0; i < 1000; i++) await expect(m.acquire(bob)).rejects.toMatchObject({ code: 'NO_MATCHING_RULE' });
    expect(records).toHaveLength(1);
    expect(records[0]!.leaseDecision).toMatchObject({ kind: 2, reasonCode: 'NO_MATCHING_RULE', workload: { uid: 5 } });
    expect(records[0]!.leaseDecision!.repeats).toBeUndefined();
    now += 1000;
    m.sweep();
    await new Promise((r) => setImmediate(r));
    expect(records).toHaveLength(2);
    expect(records[1]!.leaseDecision).toMatchObject({ kind: 2, reasonCode: 'NO_MATCHING_RULE', repeats: { count: 999 } });
  });

  it('writes a workload\'s counted refusals before its grant, and the rest at shutdown', async () => {
    m.applyEpoch(passing(1, now));
    for (let i = 0; i < 3; i++) await expect(m.acquire(alice, 'root')).rejects.toMatchObject({ code: 'NO_MATCHING_RULE' });
    const carol = { ...alice, pid: 9 };
    for (let i = 0; i < 4; i++) await expect(m.acquire(carol, 'root')).rejects.toMatchObject({ code: 'NO_MATCHING_RULE' });
    await m.acquire(alice);
    expect(records.map((r) => [r.leaseDecision!.kind, r.leaseDecision!.workload!.pid, r.leaseDecision!.repeats?.count]))
      .toEqual([[2, 4242, undefined], [2, 9, undefined], [2, 4242, 2], [1, 4242, undefined]]);
    m.flushDenials();
    await new Promise((r) => setImmediate(r));
    expect(records.at(-1)!.leaseDecision).toMatchObject({ kind: 2, workload: { pid: 9 }, repeats: { count: 3 } });
  });

  it('at the budget grants and renews nothing (AUDIT_BUDGET_EXHAUSTED); releases and revocations are still recorded', async () => {
    let full = false;
    // As the daemon's budget answers: false at once, or (full) a measurement to wait for.
    const h = new LeaseManager({ signer, now: () => now, policy: policies, logFull: () => full && Promise.resolve(true),
      audit: async (b) => {
        records.push(b);
        return records.length - 1;
      } });
    h.applyEpoch(passing(1, now));
    const a = await h.acquire(alice);
    const b = await h.acquire({ ...alice, pid: 4343 });
    full = true;
    await expect(h.acquire(alice)).rejects.toMatchObject({ code: 'AUDIT_BUDGET_EXHAUSTED' });
    await expect(h.renew(alice, a.leaseId)).rejects.toMatchObject({ code: 'AUDIT_BUDGET_EXHAUSTED' });
    expect(records.filter((r) => r.leaseDecision!.reasonCode === 'AUDIT_BUDGET_EXHAUSTED').map((r) => r.leaseDecision!.kind)).toEqual([2, 4]);
    await h.release({ ...alice, pid: 4343 }, b.leaseId);
    expect(records.at(-1)!.leaseDecision).toMatchObject({ kind: 5, leaseId: b.leaseId });
    h.applyEpoch({ epoch: 2, pass: false, reasons: [{ code: 'PCR_MISMATCH', message: 'drift' }], appraisedAtMs: now, validUntilMs: 0, policyDigest: policy.digest });
    await new Promise((r) => setImmediate(r));
    expect(records.at(-1)!.leaseDecision).toMatchObject({ kind: 6, leaseIds: [a.leaseId] });
    full = false;
    h.applyEpoch(passing(3, now));
    expect((await h.acquire(alice)).leaseId).toMatch(/^[0-9a-f]{32}$/);
  });
});
