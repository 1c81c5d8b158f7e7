/**
 * Signed authorizations end to end, on swtpm with the compiled daemon: issuers named by the
 * policy (a PEM file and a JWK), grants bound to the authorized intent and capped at the
 * authorization's expiry, refusals with their codes, one grant per authorization id also
 * across a restart, and the offline verifier re-checking the recorded authorizations.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';
import { attestctl, startDaemon, testPolicy, type RunningDaemon } from '../helpers/daemon.js';
import { AttestdClient } from '../../daemon/client/client.js';
import { attestd } from '../../daemon/gen/proto.js';
import { akKey, decode, payloads, verifyDir, withAlteredGrant } from '../helpers/audit-log.js';

let tpm: Swtpm;
let d: RunningDaemon;
let c: AttestdClient;
let work: string;
let policy: string;

const sched = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const owner = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const claimsOf = (l: attestd.lease.v1.ILease) => attestd.lease.v1.LeaseToken.decode(l.token!.token!);
const JOB = { jobId: 'job-1', imageDigest: `sha256:${'b'.repeat(64)}` };
const JOB2 = { jobId: 'job-2', imageDigest: `sha256:${'b'.repeat(64)}` };

interface Grant { iss?: 'sched' | 'owner'; jti: string; authorizes?: unknown; expS?: number }
function authz(g: Grant): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ 'attestd.authorizes': g.authorizes ?? { rule: 'governed', image_digest: JOB.imageDigest } })
    .setProtectedHeader({ alg: 'ES256' }).setIssuer(g.iss ?? 'sched').setAudience('host-under-test').setJti(g.jti)
    .setNotBefore(now - 5).setExpirationTime(g.expS ?? now + 20)
    .sign((g.iss ?? 'sched') === 'sched' ? sched.privateKey : owner.privateKey);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'attestd-authz-'));
  await writeFile(join(work, 'sched.pem'), sched.publicKey.export({ format: 'pem', type: 'spki' }));
  const uid = process.getuid?.() ?? 0;
  const ownerJwk = JSON.stringify(owner.publicKey.export({ format: 'jwk' }));
  policy = testPolicy({ extra: [
    '  - name: governed',
    `    match: { uids: [${uid}] }`,
    '    lease: { ttl: 60s, scopes: [a] }',
    '    authorization:',
    '      audience: host-under-test',
    `      issuers: [{ name: sched, key_file: ${join(work, 'sched.pem')} }]`,
    '  - name: two-party',
    `    match: { uids: [${uid}] }`,
    '    lease: { ttl: 60s, scopes: [a] }',
    '    authorization:',
    '      audience: host-under-test',
    '      require: all',
    `      issuers: [{ name: sched, key_file: ${join(work, 'sched.pem')} }, { name: owner, jwk: ${ownerJwk} }]`,
  ].join('\n') }).replace('version: 1', 'version: 2');
  tpm = await startSwtpm();
  // A state folder of the test's own: stopping a daemon removes the helper's folder, and a restart must find it.
  d = await startDaemon({ tcti: tpm.tcti, policy, stateDir: join(work, 'state') });
  c = await AttestdClient.connect(d.socket);
}, 60_000);

afterAll(async () => {
  c?.close();
  if (d?.proc.exitCode === null) await d.stop();
  await rm(d?.dir ?? '', { recursive: true, force: true });
  await tpm?.dispose();
  await rm(work, { recursive: true, force: true });
});

describe('signed authorizations', () => {
  let first: attestd.lease.v1.ILease;
  let firstJwt: string;

  it('grants an authorized job, capped at the authorization\'s expiry, and records the authorization', async () => {
    firstJwt = await authz({ jti: 'one' });
    first = (await c.call({ acquireLease: { rule: 'governed', intent: JOB, authorizations: [firstJwt] } })).acquireLease!.lease!;
    const exp = JSON.parse(Buffer.from(firstJwt.split('.')[1]!, 'base64url').toString()) as { exp: number };
    expect(Number(claimsOf(first).expiresAtMs)).toBeLessThanOrEqual(exp.exp * 1000);
    const renewed = (await c.call({ renewLease: { leaseId: first.leaseId } })).renewLease!.lease!;
    expect(Number(renewed.expiresAtMs)).toBeLessThanOrEqual(exp.exp * 1000);
    const rec = (await payloads(join(d.stateDir, 'audit'))).map(decode).find((r) => r.leaseDecision?.leaseId === first.leaseId && r.leaseDecision?.kind === 1)!;
    expect(rec.leaseDecision!.authorizations).toEqual([firstJwt]);
  });

  it('refuses another intent, an expired one, none, a replayed id, and a missing second signature', async () => {
    const call = (rule: string, authorizations: string[], intent = JOB) => c.call({ acquireLease: { rule, intent, authorizations } });
    const other = await authz({ jti: 'other', authorizes: { rule: 'governed', image_digest: `sha256:${'c'.repeat(64)}` } });
    await expect(call('governed', [other], JOB2)).rejects.toMatchObject({ code: 'AUTHZ_MISMATCH' });
    await expect(call('governed', [await authz({ jti: 'old', expS: Math.floor(Date.now() / 1000) - 120 })])).rejects.toMatchObject({ code: 'AUTHZ_EXPIRED' });
    await expect(call('governed', [])).rejects.toMatchObject({ code: 'AUTHZ_REQUIRED' });
    await expect(call('governed', [firstJwt])).rejects.toMatchObject({ code: 'AUTHZ_REPLAYED' });
    const both = { rule: 'two-party', image_digest: JOB.imageDigest };
    await expect(call('two-party', [await authz({ jti: 's2', authorizes: both })])).rejects.toMatchObject({ code: 'AUTHZ_REQUIRED' });
    const l = (await call('two-party', [await authz({ jti: 's3', authorizes: both }), await authz({ iss: 'owner', jti: 'o3', authorizes: both })])).acquireLease!.lease!;
    expect(l.rule).toBe('two-party');
    const denial = (await payloads(join(d.stateDir, 'audit'))).map(decode).filter((r) => r.leaseDecision?.kind === 2).map((r) => r.leaseDecision!.reasonCode);
    expect(denial).toEqual(expect.arrayContaining(['AUTHZ_MISMATCH', 'AUTHZ_EXPIRED', 'AUTHZ_REQUIRED', 'AUTHZ_REPLAYED']));
  });

  it('attestctl run and lease acquire take --authorization files (repeatable)', async () => {
    const any = { rule: 'two-party' };
    const files = [join(work, 's.jwt'), join(work, 'o.jwt')];
    await writeFile(files[0]!, `${await authz({ jti: 'cli-s', authorizes: any })}\n`);
    await writeFile(files[1]!, await authz({ iss: 'owner', jti: 'cli-o', authorizes: any }));
    const run = await attestctl(['run', '--rule', 'two-party', '--authorization', files[0]!, '--authorization', files[1]!, '--', 'true'], d.socket);
    expect(run.code, run.stderr).toBe(0);
    await writeFile(files[0]!, await authz({ jti: 'cli-s2', authorizes: any }));
    await writeFile(files[1]!, await authz({ iss: 'owner', jti: 'cli-o2', authorizes: any }));
    const acq = await attestctl(['lease', 'acquire', '--rule', 'two-party', '--authorization', files[0]!, '--authorization', files[1]!, '--json'], d.socket);
    expect(acq.code, acq.stderr).toBe(0);
    const again = await attestctl(['lease', 'acquire', '--rule', 'two-party', '--authorization', files[0]!, '--authorization', files[1]!], d.socket);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/AUTHZ_REPLAYED/);
  });

  it('a reload that revokes an authorization id ends its lease at once', async () => {
    const l = (await c.call({ acquireLease: { rule: 'governed', intent: JOB, authorizations: [await authz({ jti: 'to-revoke' })] } })).acquireLease!.lease!;
    await writeFile(d.policyPath, policy.replace('      audience: host-under-test\n', '      audience: host-under-test\n      revoked_ids: [to-revoke]\n'));
    d.proc.kill('SIGHUP');
    const end = Date.now() + 5000;
    let revoked: attestd.audit.v1.ILeaseDecision | undefined;
    while (!revoked && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
      revoked = (await payloads(join(d.stateDir, 'audit'))).map(decode).map((r) => r.leaseDecision).find((x) => x?.kind === 6 && x.leaseIds?.includes(l.leaseId!)) ?? undefined;
    }
    expect(revoked?.reasonCode).toBe('AUTHZ_REVOKED');
    await expect(c.call({ renewLease: { leaseId: l.leaseId } })).rejects.toMatchObject({ code: 'LEASE_NOT_FOUND' });
    await writeFile(d.policyPath, policy);
    d.proc.kill('SIGHUP');
  });

  it('still refuses a used authorization id after a restart with the same state folder', async () => {
    c.close();
    await d.stop();
    d = await startDaemon({ tcti: tpm.tcti, policy, stateDir: d.stateDir });
    c = await AttestdClient.connect(d.socket);
    await expect(c.call({ acquireLease: { rule: 'governed', intent: JOB, authorizations: [firstJwt] } })).rejects.toMatchObject({ code: 'AUTHZ_REPLAYED' });
  }, 60_000);

  it('attestctl audit verify accepts the log, and refuses it once a recorded authorization is altered', async () => {
    const akPem = (await d.status()).akPublicPem;
    c.close();
    d.proc.kill('SIGTERM');
    await d.exited;
    const logDir = join(d.stateDir, 'audit');
    const pem = join(work, 'ak.pem');
    await writeFile(pem, akPem);
    const ok = await attestctl(['audit', 'verify', logDir, '--ak', pem, '--json']);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    // audit explain tells who authorized the job, and what.
    const told = JSON.parse((await attestctl(['audit', 'explain', first.leaseId!, logDir, '--json'])).stdout) as
      { authorizations: { issuer: string; id: string; expiresAtMs: number; authorizes: unknown }[] };
    expect(told.authorizations.length).toBeGreaterThan(0);
    expect(told.authorizations.every((a) => a.issuer !== '' && a.id !== '' && a.expiresAtMs > 0 && a.authorizes !== undefined)).toBe(true);
    // Another authorization, validly signed, for another image: the grant's intent is not covered.
    const forged = await authz({ jti: 'forged', authorizes: { rule: 'governed', image_digest: `sha256:${'d'.repeat(64)}` } });
    const { dir, idx } = await withAlteredGrant(logDir, first.leaseId!, (d) => {
      d.authorizations = [forged];
    });
    const r = await verifyDir(dir, akKey(akPem));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.failure.check).toBe('lease-authorization');
      expect(r.failure.where.seq).toBe(idx);
    }
    const bad = await attestctl(['audit', 'verify', dir, '--ak', pem, '--json']);
    expect(bad.code).toBe(8);
    await rm(dir, { recursive: true, force: true });
  });
});
