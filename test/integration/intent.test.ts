/**
 * Execution intent end to end, on swtpm with the compiled daemon: artifacts named by path are
 * hashed by the daemon, the token names the intent's digest and the grant's record holds the
 * intent; rule constraints refuse with their codes; the offline verifier accepts the log and
 * refuses one whose recorded intent was altered.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';
import { attestctl, startDaemon, testPolicy, type RunningDaemon } from '../helpers/daemon.js';
import { AttestdClient } from '../../daemon/client/client.js';
import { attestd } from '../../daemon/gen/proto.js';
import { akKey, decode, payloads, verifyDir, withAlteredGrant } from '../helpers/audit-log.js';
import { decodeIntent, encodeIntent, intentDigest } from '../../daemon/verify/intent/codec.js';

let tpm: Swtpm;
let d: RunningDaemon;
let c: AttestdClient;
let work: string;
let weights: string;
let oldDigest: string;

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const claimsOf = (l: attestd.lease.v1.ILease) => attestd.lease.v1.LeaseToken.decode(l.token!.token!);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'attestd-intent-'));
  weights = join(work, 'weights.bin');
  const content = Buffer.from('model weights v1\n');
  await writeFile(weights, content, { mode: 0o644 });
  oldDigest = sha(content);
  await writeFile(join(work, 'refs.sha256'), `# reference values\n${'e'.repeat(64)}  other.bin\n${oldDigest}  weights.bin\n`);
  const policy = testPolicy({ extra: [
    '  - name: pinned',
    `    match: { uids: [${process.getuid?.() ?? 0}] }`,
    '    lease: { ttl: 30s, scopes: [a] }',
    '    intent:',
    '      require: [artifacts, job_id]',
    '      measured_only: true',
    `      artifacts: { allow: ["${oldDigest}"] }`,
    `      images: { allow: ["${'b'.repeat(64)}"] }`,
    '  - name: fromfile',
    `    match: { uids: [${process.getuid?.() ?? 0}] }`,
    '    lease: { ttl: 30s, scopes: [a] }',
    `    intent: { artifacts: { from: ${join(work, 'refs.sha256')} } }`,
  ].join('\n') }).replace('version: 1', 'version: 2');
  tpm = await startSwtpm();
  d = await startDaemon({ tcti: tpm.tcti, policy });
  c = await AttestdClient.connect(d.socket);
}, 60_000);

afterAll(async () => {
  c?.close();
  if (d?.proc.exitCode === null) await d.stop();
  await rm(d?.dir ?? '', { recursive: true, force: true });
  await tpm?.dispose();
  await rm(work, { recursive: true, force: true });
});

const intent = (over: attestd.lease.v1.IIntent = {}): attestd.lease.v1.IIntent =>
  ({ artifacts: [{ name: 'weights', path: weights }], jobId: 'job-1', labels: { team: 'ml' }, ...over });

describe('execution intent', () => {
  let first: attestd.lease.v1.ILease;

  it('grants with a measured artifact; the token carries the digest of the intent the daemon resolved', async () => {
    first = (await c.call({ acquireLease: { rule: 'pinned', intent: intent() } })).acquireLease!.lease!;
    const claims = claimsOf(first);
    expect(claims.intentSha256.length).toBe(32);
    const renewed = (await c.call({ renewLease: { leaseId: first.leaseId } })).renewLease!.lease!;
    expect(Buffer.from(claimsOf(renewed).intentSha256)).toEqual(Buffer.from(claims.intentSha256));
    // Without an intent, a lease under an unconstrained rule names none.
    const plain = (await c.call({ acquireLease: { rule: 'tests' } })).acquireLease!.lease!;
    expect(claimsOf(plain).intentSha256.length).toBe(0);
  });

  it('a reference-value file named by the policy allows its digests, and is recorded with the policy', async () => {
    await c.call({ acquireLease: { rule: 'fromfile', intent: intent() } });
    const load = (await payloads(join(d.stateDir, 'audit'))).map(decode).find((r) => r.policyLoad?.valid)!.policyLoad!;
    expect(load.references!.map((r) => r.file)).toEqual([join(work, 'refs.sha256')]);
    expect(Buffer.from(load.references![0]!.text!).toString()).toContain(oldDigest);
  });

  it('the command line comes from the kernel, never the request', async () => {
    const bogus = { ...intent(), cmdline: ['not', 'mine'] } as attestd.lease.v1.IIntent;
    const l = (await c.call({ acquireLease: { rule: 'tests', intent: bogus } })).acquireLease!.lease!;
    const rec = (await payloads(join(d.stateDir, 'audit'))).map(decode).find((r) => r.leaseDecision?.leaseId === l.leaseId && r.leaseDecision?.kind === 1)!;
    const got = decodeIntent(rec.leaseDecision!.intent!);
    const own = (await readFile('/proc/self/cmdline', 'utf8')).split('\0').filter((_, i, a) => i < a.length - 1);
    expect(got.cmdline).toEqual(own);
    expect(got.labels).toEqual([['team', 'ml']]);
    expect(intentDigest(rec.leaseDecision!.intent!)).toEqual(Buffer.from(claimsOf(l).intentSha256));
  });

  it('the grant record holds the intent, measured by the daemon, whose digest the token names', async () => {
    const rec = (await payloads(join(d.stateDir, 'audit'))).map(decode).find((r) => r.leaseDecision?.leaseId === first.leaseId && r.leaseDecision?.kind === 1)!;
    const got = decodeIntent(rec.leaseDecision!.intent!);
    expect(got.artifacts).toEqual([{ name: 'weights', path: weights, sha256: Buffer.from(oldDigest, 'hex'), measured: true }]);
    expect(got.jobId).toBe('job-1');
    expect(intentDigest(rec.leaseDecision!.intent!)).toEqual(Buffer.from(claimsOf(first).intentSha256));
  });

  it('a changed file gives another digest, and a rule allowing only the old one refuses, naming the artifact', async () => {
    await writeFile(weights, 'model weights v2\n');
    const l = (await c.call({ acquireLease: { rule: 'tests', intent: intent() } })).acquireLease!.lease!;
    expect(Buffer.from(claimsOf(l).intentSha256)).not.toEqual(Buffer.from(claimsOf(first).intentSha256));
    await expect(c.call({ acquireLease: { rule: 'pinned', intent: intent() } })).rejects.toMatchObject({ code: 'INTENT_ARTIFACT_NOT_ALLOWED' });
    await expect(c.call({ acquireLease: { rule: 'fromfile', intent: intent() } })).rejects.toMatchObject({ code: 'INTENT_ARTIFACT_NOT_ALLOWED' });
    // The client hears the code; the refusal's record names the artifact and its digest.
    const denial = (await payloads(join(d.stateDir, 'audit'))).map(decode).reverse().find((r) => r.leaseDecision?.kind === 2)!;
    expect(denial.leaseDecision!.reasonCode).toBe('INTENT_ARTIFACT_NOT_ALLOWED');
    expect(denial.leaseDecision!.reason).toContain('"weights"');
    expect(denial.leaseDecision!.reason).toContain(sha(Buffer.from('model weights v2\n')));
  });

  it('refuses a declared artifact under measured_only, a missing required field, a disallowed image, an unreadable path', async () => {
    const declared = { artifacts: [{ name: 'weights', sha256: Buffer.from(oldDigest, 'hex') }] };
    await expect(c.call({ acquireLease: { rule: 'pinned', intent: intent(declared) } })).rejects.toMatchObject({ code: 'INTENT_NOT_MEASURED' });
    await expect(c.call({ acquireLease: { rule: 'pinned', intent: intent({ jobId: '' }) } })).rejects.toMatchObject({ code: 'INTENT_REQUIRED' });
    await expect(c.call({ acquireLease: { rule: 'pinned' } })).rejects.toMatchObject({ code: 'INTENT_REQUIRED' });
    await expect(c.call({ acquireLease: { rule: 'tests', intent: intent({ artifacts: [{ path: work }] }) } })).rejects.toMatchObject({ code: 'INTENT_ARTIFACT_UNREADABLE' });
    await expect(c.call({ acquireLease: { rule: 'tests', intent: intent({ artifacts: [{ path: join(work, 'none') }] }) } })).rejects.toMatchObject({ code: 'INTENT_ARTIFACT_UNREADABLE' });
    await expect(c.call({ acquireLease: { rule: 'tests', intent: intent({ artifacts: [{ path: 'relative' }] }) } })).rejects.toMatchObject({ code: 'INTENT_MALFORMED' });
    await expect(c.call({ acquireLease: { rule: 'tests', intent: intent({ labels: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) }) } }))
      .rejects.toMatchObject({ code: 'INTENT_MALFORMED' });
    await writeFile(weights, 'model weights v1\n');
    await expect(c.call({ acquireLease: { rule: 'pinned', intent: intent({ imageDigest: `sha256:${'c'.repeat(64)}` }) } })).rejects.toMatchObject({ code: 'INTENT_IMAGE_NOT_ALLOWED' });
  });

  it('attestctl lease acquire --intent and run --intent read a JSON intent file', async () => {
    const file = join(work, 'intent.json');
    await writeFile(file, JSON.stringify({ artifacts: [{ path: weights, name: 'weights' }], job_id: 'job-cli', labels: { a: 'b' } }));
    const r = await attestctl(['lease', 'acquire', '--rule', 'pinned', '--intent', file, '--json'], d.socket);
    expect(r.code).toBe(0);
    const run = await attestctl(['run', '--rule', 'pinned', '--intent', file, '--', 'true', 'intent-run-marker'], d.socket);
    expect(run.code, run.stderr).toBe(0);
    const granted = (await payloads(join(d.stateDir, 'audit'))).map(decode).filter((x) => x.leaseDecision?.kind === 1).at(-1)!;
    const recorded = decodeIntent(granted.leaseDecision!.intent!);
    expect(recorded.jobId).toBe('job-cli');
    // The command line is attestctl's own, read by the daemon: it names the command run.
    expect(recorded.cmdline.slice(-2)).toEqual(['true', 'intent-run-marker']);
    await writeFile(file, JSON.stringify({ artifacts: [{ path: weights }], cmdline: ['x'] }));
    const bad = await attestctl(['lease', 'acquire', '--intent', file], d.socket);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/unknown key "cmdline"/);
  });

  it('attestctl audit verify accepts the log, and refuses it once a grant\'s recorded intent is altered', async () => {
    const akPem = (await d.status()).akPublicPem;
    c.close();
    d.proc.kill('SIGTERM');
    await d.exited;
    const logDir = join(d.stateDir, 'audit');
    const pem = join(work, 'ak.pem');
    await writeFile(pem, akPem);
    const ok = await attestctl(['audit', 'verify', logDir, '--ak', pem, '--json']);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    const { dir, idx } = await withAlteredGrant(logDir, first.leaseId!, (d) => {
      d.intent = encodeIntent({ ...decodeIntent(d.intent!), jobId: 'job-2' });
    });
    const r = await verifyDir(dir, akKey(akPem));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.failure.check).toBe('lease-intent');
      expect(r.failure.where.seq).toBe(idx);
    }
    const bad = await attestctl(['audit', 'verify', dir, '--ak', pem, '--json']);
    expect(bad.code).toBe(8);
    await rm(dir, { recursive: true, force: true });
  });
});
