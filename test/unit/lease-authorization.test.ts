import { generateKeyPairSync, sign as edSign } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { LeaseManager } from '../../daemon/lease/manager.js';
import { FileAuthorizationIds, idKey } from '../../daemon/lease/authz-replay.js';
import { PolicyHolder } from '../../daemon/policy/holder.js';
import type { EpochState } from '../../daemon/appraisal/epoch-state.js';
import type { LoadedPolicy, Rule } from '../../daemon/policy/types.js';
import type { WorkloadIdentity } from '../../daemon/base/workload-identity.js';
import type { AuditBody } from '../../daemon/audit/log.js';
import { attestd } from '../../daemon/gen/proto.js';

const session = generateKeyPairSync('ed25519');
const raw = Buffer.from(session.publicKey.export({ format: 'jwk' }).x!, 'base64url');
const signer = { sign: (d: Uint8Array) => edSign(null, d, session.privateKey), publicKey: () => raw };
const issuer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const NOW = Date.parse('2026-12-01T00:00:00Z');

const rule = (revokedIds: string[] = []): Rule => ({ name: 'job', match: { uids: [1000] }, ttlMs: 600_000, scopes: [],
  authorization: { issuers: [{ name: 'sched', jwk: issuer.publicKey.export({ format: 'jwk' }) as Record<string, unknown> }],
    require: 'all', audience: 'host-1', algorithms: ['ES256'], revokedIds } });
const policyWith = (r: Rule): LoadedPolicy => ({ file: 'p.yaml', text: '', digest: Buffer.alloc(32, 7),
  policy: { version: 2, intervalMs: 2000, maxAgeMs: 6000, allowSha1: false, pcrs: [], rules: [r] } });
const alice: WorkloadIdentity = { pid: 4242, uid: 1000, gid: 1000, startTime: 77n, exePath: '/usr/bin/python3', exeSha256: Buffer.alloc(32, 1), cgroup: '/' };
const epoch: EpochState = { epoch: 1, pass: true, reasons: [], appraisedAtMs: NOW, validUntilMs: NOW + 3_600_000, policyDigest: Buffer.alloc(32, 7) };

function jwt(jti: string, expS = NOW / 1000 + 120): Promise<string> {
  return new SignJWT({ 'attestd.authorizes': { rule: 'job' } }).setProtectedHeader({ alg: 'ES256' })
    .setIssuer('sched').setAudience('host-1').setJti(jti).setExpirationTime(expS).sign(issuer.privateKey);
}

function manager(records: AuditBody[], holder = new PolicyHolder(policyWith(rule())), ids?: FileAuthorizationIds): LeaseManager {
  const m = new LeaseManager({ signer, now: () => NOW, policy: holder, audit: async (b) => records.push(b) - 1, ...(ids ? { authorizationIds: ids } : {}) });
  m.applyEpoch(epoch);
  return m;
}

describe('lease manager: signed authorizations', () => {
  it('grants with the authorization recorded and the lease capped at its exp; a renewal keeps it', async () => {
    const records: AuditBody[] = [];
    const m = manager(records);
    const a = await jwt('a1');
    const lease = await m.acquire(alice, undefined, [], undefined, [a]);
    expect(lease.expiresAtMs).toBe(NOW + 120_000);
    const d = records.at(-1)!.leaseDecision!;
    expect(d.kind).toBe(attestd.audit.v1.LeaseDecision.Kind.GRANT);
    expect(d.authorizations).toEqual([a]);
    const renewed = await m.renew(alice, lease.leaseId);
    expect(renewed.expiresAtMs).toBe(NOW + 120_000);
    expect(records.at(-1)!.leaseDecision!.authorizations).toEqual([a]);
  });

  it('refuses without authorization, and a second grant with the same id', async () => {
    const records: AuditBody[] = [];
    const m = manager(records);
    await expect(m.acquire(alice)).rejects.toMatchObject({ code: 'AUTHZ_REQUIRED' });
    expect(records.at(-1)!.leaseDecision).toMatchObject({ kind: 2, reasonCode: 'AUTHZ_REQUIRED' });
    const a = await jwt('once');
    await m.acquire(alice, undefined, [], undefined, [a]);
    await expect(m.acquire(alice, undefined, [], undefined, [a])).rejects.toMatchObject({ code: 'AUTHZ_REPLAYED' });
    await expect(m.acquire(alice, undefined, [], undefined, [a, a])).rejects.toMatchObject({ code: 'AUTHZ_REPLAYED' });
  });

  it('refuses a renewal once the policy revokes the id or drops the issuer', async () => {
    const holder = new PolicyHolder(policyWith(rule()));
    const m = manager([], holder);
    const lease = await m.acquire(alice, undefined, [], undefined, [await jwt('r1')]);
    holder.load(policyWith(rule(['r1'])));
    await expect(m.renew(alice, lease.leaseId)).rejects.toMatchObject({ code: 'AUTHZ_REVOKED' });
    const other = rule();
    other.authorization!.issuers[0]!.name = 'someone-else';
    holder.load(policyWith(other));
    await expect(m.renew(alice, lease.leaseId)).rejects.toMatchObject({ code: 'AUTHZ_ISSUER_UNKNOWN' });
  });

  it('ends at once, on a policy reload, the leases whose id is revoked or whose issuer key changed', async () => {
    const records: AuditBody[] = [];
    const holder = new PolicyHolder(policyWith(rule()));
    const m = manager(records, holder);
    const a = await m.acquire(alice, undefined, [], undefined, [await jwt('keep')]);
    const b = await m.acquire(alice, undefined, [], undefined, [await jwt('drop')]);
    const events: string[] = [];
    m.watch(alice, b.leaseId, (e) => events.push(`${e.kind}:${'reasonCode' in e ? e.reasonCode : ''}`));
    holder.load(policyWith(rule(['drop'])));
    await m.reviewAuthorizations();
    expect(m.isLive(a.leaseId)).toBe(true);
    expect(m.isLive(b.leaseId)).toBe(false);
    expect(events).toEqual(['REVOKED:AUTHZ_REVOKED']);
    const rotated = rule();
    rotated.authorization!.issuers[0]!.jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
    holder.load(policyWith(rotated));
    await m.reviewAuthorizations();
    expect(m.isLive(a.leaseId)).toBe(false);
    await new Promise((r) => setImmediate(r));
    const revocations = records.filter((r) => r.leaseDecision?.kind === attestd.audit.v1.LeaseDecision.Kind.REVOKE).map((r) => r.leaseDecision!.reasonCode);
    expect(revocations).toEqual(['AUTHZ_REVOKED', 'AUTHZ_INVALID']);
  });

  it('remembers used ids across a restart (same file), and forgets expired ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'authz-ids-'));
    const file = join(dir, 'ids.jsonl');
    const a = await jwt('persist');
    await manager([], undefined, FileAuthorizationIds.open(file, NOW)).acquire(alice, undefined, [], undefined, [a]);
    const again = manager([], undefined, FileAuthorizationIds.open(file, NOW));
    await expect(again.acquire(alice, undefined, [], undefined, [a])).rejects.toMatchObject({ code: 'AUTHZ_REPLAYED' });
    expect(FileAuthorizationIds.open(file, NOW + 3_600_000).used(idKey('sched', 'persist'))).toBe(false);
    expect(readFileSync(file, 'utf8')).toBe('');
  });

  it('ignores a torn last line, refuses a malformed one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'authz-ids-'));
    const file = join(dir, 'ids.jsonl');
    writeFileSync(file, `${JSON.stringify({ key: idKey('s', 'x'), exp: NOW + 1000 })}\n{"key":`);
    expect(FileAuthorizationIds.open(file, NOW).used(idKey('s', 'x'))).toBe(true);
    writeFileSync(file, 'garbage\n');
    expect(() => FileAuthorizationIds.open(file, NOW)).toThrow(/line 1/);
  });
});
