/**
 * Lineage end to end on a software TPM: a lease derived for a child process, and by that child
 * for its own, three generations deep; refusals of a process that is not a descendant, of a
 * scope or GPU the parent does not have, and beyond the rule's depth; a released parent ending
 * its descendants; PCR drift ending the whole lineage, the root with NOT_TRUSTED and every
 * descendant with ANCESTOR_ENDED naming it; and the offline verifier passing on the log.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startSwtpm, tpm2, type Swtpm } from '../helpers/swtpm.js';
import { attestctl, startDaemon, testPolicy, type RunningDaemon } from '../helpers/daemon.js';
import { decode, payloads } from '../helpers/audit-log.js';
import { attestd } from '../../daemon/gen/proto.js';
import type { AttestdClient } from '../../daemon/client/client.js';

const Kind = attestd.lease.v1.LeaseEvent.Kind;
const GENERATION = resolve(import.meta.dirname, '../helpers/lineage-generation.mjs');
const policy = testPolicy({ maxAge: '60s', ttl: '60s', extra: '    lineage: { max_depth: 3 }' })
  .replace('version: 1', 'version: 2').replace('scopes: ["gpu:all"]', 'scopes: ["gpu:all", "net"]');

let tpm: Swtpm;
let d: RunningDaemon;
let stateDir: string;
let client: AttestdClient;
const started: ChildProcess[] = [];
const pids = new Set<number>();

beforeAll(async () => {
  tpm = await startSwtpm();
  stateDir = mkdtempSync(join(tmpdir(), 'attestd-lineage-'));
  d = await startDaemon({ tcti: tpm.tcti, stateDir, policy });
  client = await d.client();
}, 30_000);
afterAll(async () => {
  client?.close();
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const p of started) p.kill('SIGKILL');
  await d?.stop();
  await tpm?.dispose();
  rmSync(stateDir, { recursive: true, force: true });
});

function sleeper(): ChildProcess {
  const p = spawn('sleep', ['60'], { stdio: 'ignore' });
  started.push(p);
  return p;
}

const codeOf = (p: Promise<unknown>): Promise<string> => p.then(() => 'granted', (e: { code?: string }) => e.code ?? String(e));
const acquire = async () => (await client.call({ acquireLease: {} })).acquireLease!.lease!;
const derive = (parentLeaseId: string, childPid: number, more: { scopes?: string[]; gpus?: string[] } = {}) =>
  client.call({ deriveLease: { parentLeaseId, childPid, ...more } });

async function until<T>(what: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = what();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`not reached\n${d.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('lineage', () => {
  it('refuses a process that is not a descendant, a scope or GPU the parent lacks, and a rule without lineage beyond its depth', async () => {
    const root = await acquire();
    expect(await codeOf(derive(root.leaseId!, process.ppid))).toBe('LINEAGE_NOT_DESCENDANT');
    expect(await codeOf(derive(root.leaseId!, process.pid))).toBe('LINEAGE_NOT_DESCENDANT');
    const child = sleeper();
    expect(await codeOf(derive(root.leaseId!, child.pid!, { scopes: ['admin'] }))).toBe('LINEAGE_NOT_SUBSET');
    expect(await codeOf(derive(root.leaseId!, child.pid!, { gpus: ['0'] }))).toBe('LINEAGE_NOT_SUBSET');
    const narrow = (await derive(root.leaseId!, child.pid!, { scopes: ['net'] })).deriveLease!.lease!;
    expect(narrow.scopes).toEqual(['net']);
    const claims = attestd.lease.v1.LeaseToken.decode(narrow.token!.token!);
    expect(claims).toMatchObject({ parentLeaseId: root.leaseId, rootLeaseId: root.leaseId, depth: 1 });
    expect(claims.workload).toMatchObject({ pid: child.pid });
    // Only the holder derives: the child lease is held by the sleep, not by this process.
    expect(await codeOf(derive(narrow.leaseId!, sleeper().pid!))).toBe('IDENTITY_MISMATCH');
    // attestctl lease derive is refused unless attestctl itself holds the parent; a bad command line never reaches the daemon.
    const cli = await attestctl(['lease', 'derive', root.leaseId!, '--pid', String(child.pid), '--scopes', 'net', '--json'], d.socket);
    expect(cli.code).toBe(4);
    expect(JSON.parse(cli.stdout)).toMatchObject({ error: 'IDENTITY_MISMATCH' });
    expect((await attestctl(['lease', 'derive', root.leaseId!], d.socket)).code).toBe(2);
    await client.call({ releaseLease: { leaseId: root.leaseId } });
  }, 30_000);

  it('a released parent ends its children at once, ANCESTOR_ENDED naming it', async () => {
    const root = await acquire();
    const child = sleeper();
    const lease = (await derive(root.leaseId!, child.pid!)).deriveLease!.lease!;
    const events: attestd.lease.v1.LeaseEvent[] = [];
    await client.call({ watchLease: { leaseId: lease.leaseId } }, (r) => events.push(r.leaseEvent as attestd.lease.v1.LeaseEvent));
    await client.call({ releaseLease: { leaseId: root.leaseId } });
    const ended = await until(() => events.find((e) => e.kind === Kind.REVOKED));
    expect(ended).toMatchObject({ reasonCode: 'ANCESTOR_ENDED', reason: `ancestor lease ${root.leaseId} ended` });
    expect(await codeOf(client.call({ verifyLease: { token: lease.token } }).then((r) => {
      if (r.verifyLease!.live) throw new Error('still live');
    }))).toBe('granted');
  }, 30_000);

  it('three generations, each derived by its parent\'s holder; depth beyond the rule refused; PCR drift ends them all', async () => {
    const root = await acquire();
    const rootEvents: attestd.lease.v1.LeaseEvent[] = [];
    await client.call({ watchLease: { leaseId: root.leaseId } }, (r) => rootEvents.push(r.leaseEvent as attestd.lease.v1.LeaseEvent));
    const gen1 = spawn(process.execPath, [GENERATION, d.socket, '1', '2'], { stdio: ['pipe', 'pipe', 'inherit'] });
    started.push(gen1);
    const lines: Record<string, unknown>[] = [];
    let buf = '';
    gen1.stdout!.on('data', (b: Buffer) => {
      buf += String(b);
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = JSON.parse(buf.slice(0, i)) as Record<string, unknown>;
        buf = buf.slice(i + 1);
        pids.add(line.pid as number);
        lines.push(line);
      }
    });
    const first = (await derive(root.leaseId!, gen1.pid!)).deriveLease!.lease!;
    gen1.stdin!.write(`${first.leaseId}\n`);
    const deeper = await until(() => lines.find((l) => 'deeper' in l));
    expect(deeper).toMatchObject({ gen: 3, deeper: 'LINEAGE_TOO_DEEP' });
    const ready = [1, 2, 3].map((g) => lines.find((l) => l.gen === g && 'ready' in l)!);
    const ids = ready.map((l) => l.ready as string);
    expect(ids[0]).toBe(first.leaseId);
    expect((await d.status()).activeLeases).toBe(4);

    const ext = await tpm2(['pcrextend', `16:sha256=${'22'.repeat(32)}`], tpm.tcti);
    expect(ext.code).toBe(0);
    const rootEnd = await until(() => rootEvents.find((e) => e.kind === Kind.REVOKED));
    expect(rootEnd.reasonCode).toBe('NOT_TRUSTED');
    const ends = await until(() => {
      const got = lines.filter((l) => l.event === Kind.REVOKED);
      return got.length === 3 ? got : undefined;
    });
    for (const e of ends) expect(e).toMatchObject({ reasonCode: 'ANCESTOR_ENDED', reason: `ancestor lease ${root.leaseId} ended` });
    expect(ends.map((e) => e.leaseId).sort()).toEqual([...ids].sort());
    expect((await d.status()).activeLeases).toBe(0);

    // The log holds each derivation with its lineage, and passes the offline verifier.
    const akPem = (await d.status()).akPublicPem;
    await d.stop().catch(() => undefined);
    const records = (await payloads(join(stateDir, 'audit'))).map(decode).map((r) => r.leaseDecision).filter((x) => x);
    const grants = records.filter((r) => r!.kind === 1 && r!.depth);
    expect(grants.find((g) => g!.leaseId === ids[2])).toMatchObject({ parentLeaseId: ids[1], rootLeaseId: root.leaseId, depth: 3 });
    expect(records.find((r) => r!.kind === 2 && r!.reasonCode === 'LINEAGE_TOO_DEEP')).toBeDefined();
    const pem = join(tmpdir(), `attestd-lineage-ak-${process.pid}.pem`);
    writeFileSync(pem, akPem);
    const v = await attestctl(['audit', 'verify', join(stateDir, 'audit'), '--ak', pem, '--json']);
    rmSync(pem, { force: true });
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ verified: true });

    // audit explain tells the middle generation's ancestors and descendants, and how it ended.
    const x = await attestctl(['audit', 'explain', ids[1]!, join(stateDir, 'audit'), '--json']);
    expect(x.code, x.stderr).toBe(0);
    expect(JSON.parse(x.stdout)).toMatchObject({
      lineage: { depth: 2, ancestors: [ids[0], root.leaseId], descendants: [{ leaseId: ids[2], parentLeaseId: ids[1], depth: 3 }] },
      ended: { how: 'revoked', code: 'ANCESTOR_ENDED', reason: `ancestor lease ${root.leaseId} ended` },
    });
    const text = await attestctl(['audit', 'explain', root.leaseId!, join(stateDir, 'audit')]);
    expect(text.stdout).toContain(`lineage: depth 0\n    descendant ${ids[0]} (depth 1, from ${root.leaseId})`);
  }, 60_000);
});
