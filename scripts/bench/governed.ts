/**
 * 14. Governed execution: an acquire that carries an execution intent (declared artifacts, an
 * image digest, a job id) and one signed authorization (ES256, a fresh id each time) beside a
 * plain acquire on the same daemon, alternating; DeriveLease for a child process of the
 * holder; and the end of 1,000 derived leases when their parent is released, timed to the last
 * event pushed to their watchers.
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { AttestdClient } from '../../daemon/client/client.js';
import { tempDir } from './processes.js';
import type { Benchmark, Outcome } from './report.js';
import { benchPolicy, startDaemon } from './servers.js';
import { msSince, nowNs, summarize } from './stats.js';
import { startSwtpm } from './swtpm.js';

const ROUNDS = 4;
const PER_ROUND = 60;
const DERIVES = 200;
const CASCADE = 1000;
/** WatchLease allows 64 watches per connection. */
const WATCHES_PER_CONNECTION = 60;
const IMAGE = `sha256:${'b'.repeat(64)}`;

async function run(): Promise<Outcome> {
  const sw = await startSwtpm();
  const dir = await tempDir('attestd-bench-governed-');
  const issuer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await writeFile(join(dir, 'issuer.pem'), issuer.publicKey.export({ format: 'pem', type: 'spki' }));
  const uid = process.getuid?.() ?? 0;
  const policy = `${benchPolicy({ interval: '2s', maxAge: '1h', ttl: '1h' }).replace('version: 1', 'version: 2')}    lineage: { max_depth: 1 }
  - name: governed
    match: { uids: [${uid}] }
    lease: { ttl: 1h, scopes: ["gpu:all"] }
    authorization:
      audience: bench-host
      issuers: [{ name: scheduler, key_file: ${join(dir, 'issuer.pem')} }]
`;
  const d = await startDaemon({ tcti: sw.tcti, policy });
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  const clients: AttestdClient[] = [];
  try {
    const c = await AttestdClient.connect(d.socket);
    clients.push(c);
    const now = Math.floor(Date.now() / 1000);
    const jwts = await Promise.all(Array.from({ length: ROUNDS * PER_ROUND + 10 }, () => new SignJWT({ 'attestd.authorizes': { rule: 'governed', image_digest: IMAGE } })
      .setProtectedHeader({ alg: 'ES256' }).setIssuer('scheduler').setAudience('bench-host').setJti(randomBytes(12).toString('hex'))
      .setNotBefore(now - 5).setExpirationTime(now + 3600).sign(issuer.privateKey)));
    const intent = { jobId: 'bench-job', imageDigest: IMAGE, artifacts: [{ name: 'weights', sha256: randomBytes(32) }, { name: 'config', sha256: randomBytes(32) }] };
    const plain: number[] = [];
    const governed: number[] = [];
    for (let i = 0; i < 5; i++) {
      await c.call({ acquireLease: { rule: 'bench' } });
      await c.call({ acquireLease: { rule: 'governed', intent, authorizations: [jwts.pop()!] } });
    }
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < PER_ROUND; i++) {
        let t = nowNs();
        await c.call({ acquireLease: { rule: 'bench' } });
        plain.push(msSince(t));
        t = nowNs();
        await c.call({ acquireLease: { rule: 'governed', intent, authorizations: [jwts.pop()!] } });
        governed.push(msSince(t));
      }
    }
    // Derivation: for a child of this process, under a lease this process holds.
    const root = (await c.call({ acquireLease: { rule: 'bench' } })).acquireLease!.lease!.leaseId!;
    const derive: number[] = [];
    for (let i = 0; i < DERIVES; i++) {
      const t = nowNs();
      await c.call({ deriveLease: { parentLeaseId: root, childPid: child.pid! } });
      derive.push(msSince(t));
    }
    // Cascade: 1,000 children of one parent, each watched; the parent released.
    const parent = (await c.call({ acquireLease: { rule: 'bench' } })).acquireLease!.lease!.leaseId!;
    const kids: string[] = [];
    for (let i = 0; i < CASCADE; i++) kids.push((await c.call({ deriveLease: { parentLeaseId: parent, childPid: child.pid! } })).deriveLease!.lease!.leaseId!);
    let ended = 0;
    let lastMs = 0;
    const t0Holder = { t: 0n };
    const allEnded = new Promise<void>((resolve, reject) => {
      const onEvent = (kind: number | null | undefined) => {
        if (kind === 4 || kind === 5 || kind === 6) {
          ended++;
          lastMs = msSince(t0Holder.t);
          if (ended === CASCADE) resolve();
        }
      };
      void (async () => {
        for (let i = 0; i < kids.length; i += WATCHES_PER_CONNECTION) {
          const w = await AttestdClient.connect(d.socket);
          clients.push(w);
          await Promise.all(kids.slice(i, i + WATCHES_PER_CONNECTION).map((id) =>
            w.call({ watchLease: { leaseId: id } }, (res) => onEvent(res.leaseEvent?.kind))));
        }
        t0Holder.t = nowNs();
        await c.call({ releaseLease: { leaseId: parent } });
      })().catch(reject);
    });
    await allEnded;
    const p = summarize(plain);
    const g = summarize(governed);
    const dv = summarize(derive);
    return {
      baseline: 'a plain acquire on the same daemon and connection, alternating with the governed one',
      figures: [
        { metric: 'acquire with intent + 1 authorization, p50 (baseline: plain)', unit: 'ms', value: g.p50, baseline: p.p50, better: 'lower',
          target: { text: '<= +0.3 ms', met: g.p50 - p.p50 <= 0.3 } },
        { metric: 'acquire with intent + 1 authorization, p99 (baseline: plain)', unit: 'ms', value: g.p99, baseline: p.p99, better: 'lower' },
        { metric: 'derive p50 (baseline: plain acquire)', unit: 'ms', value: dv.p50, baseline: p.p50, better: 'lower' },
        { metric: `end of ${CASCADE.toLocaleString('en-US')} derived leases, to the last pushed event`, unit: 'ms', value: lastMs, baseline: p.p50, better: 'lower' },
      ],
      notes: [
        'governed: 2 declared artifacts, an image digest and a job id (no file hashing), one ES256 authorization with a fresh id (its id is made durable before the grant)',
        `${ROUNDS} rounds of ${PER_ROUND} alternating acquires; ${DERIVES} derivations for one child process; ${CASCADE} watched children of one parent, released`,
      ],
      details: { plain: p, governed: g, derive: dv, cascadeMs: lastMs },
    };
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${d.output().slice(-3000)}`, { cause: err });
  } finally {
    child.kill('SIGKILL');
    for (const x of clients) x.close();
    await d.stop();
    await sw.stop();
  }
}

export const governedBench: Benchmark = { id: 'governed', title: '14. Governed execution: intent and authorization on acquire, derivation, cascade', run };
