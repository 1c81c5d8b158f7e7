/**
 * Opt-in soak (`npm run soak`; not part of `npm test`): the daemon is SIGKILLed again and again
 * (ATTESTD_SOAK_ROUNDS, default 20) while eight clients acquire leases as fast as they can.
 * After every restart the log must recover; at the end no grant a client saw acknowledged may
 * be missing from the log, and the log must verify offline. Prints its figures.
 */
import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { startSwtpm } from '../helpers/swtpm.js';
import { startDaemon, testPolicy, type RunningDaemon } from '../helpers/daemon.js';
import { AttestdClient, RemoteError } from '../../daemon/client/client.js';
import { akKey, decode, payloads, verifyDir } from '../helpers/audit-log.js';

const ROUNDS = Number(process.env.ATTESTD_SOAK_ROUNDS ?? 20);
const CLIENTS = 8;

/** Eight clients acquiring until the daemon dies under them; every acknowledged lease id is kept. */
async function loadUntilKilled(d: RunningDaemon, acknowledged: Set<string>, killAfterMs: number): Promise<number> {
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => AttestdClient.connect(d.socket)));
  let stop = false;
  let refused = 0;
  const load = clients.map(async (c) => {
    while (!stop) {
      try {
        acknowledged.add((await c.call({ acquireLease: {} })).acquireLease!.lease!.leaseId!);
      } catch (err) {
        if (!(err instanceof RemoteError)) return; // the daemon died under us
        refused++;
      }
    }
  });
  await new Promise((r) => setTimeout(r, killAfterMs));
  d.proc.kill('SIGKILL');
  await d.exited;
  stop = true;
  await Promise.all(load);
  for (const c of clients) c.close();
  return refused;
}

describe('audit log under SIGKILL', () => {
  it(`loses no acknowledged grant across ${ROUNDS} SIGKILLs under ${CLIENTS}-client load, and the log verifies`, async () => {
    const tpm = await startSwtpm();
    const acknowledged = new Set<string>();
    const dirs: string[] = [];
    let stateDir: string | undefined;
    let akPem = '';
    let refused = 0;
    const started = Date.now();
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const d = await startDaemon({ tcti: tpm.tcti, stateDir, policy: testPolicy({ maxAge: '30s' }) });
        dirs.push(d.dir);
        stateDir ??= d.stateDir;
        akPem ||= (await d.status()).akPublicPem;
        // Kill at a different point of each round's stream.
        refused += await loadUntilKilled(d, acknowledged, 200 + (round * 137) % 900);
      }
      const last = await startDaemon({ tcti: tpm.tcti, stateDir, policy: testPolicy({ maxAge: '30s' }) });
      dirs.push(last.dir);
      last.proc.kill('SIGTERM');
      await last.exited;
      const audit = join(stateDir!, 'audit');
      const verifyStarted = Date.now();
      const r = await verifyDir(audit, akKey(akPem));
      const verifyMs = Date.now() - verifyStarted;
      if (!r.ok) throw r.failure;
      const records = (await payloads(audit)).map(decode);
      const granted = new Set(records.filter((x) => x.leaseDecision?.kind === 1).map((x) => x.leaseDecision!.leaseId));
      const recoveries = records.filter((x) => x.logRecovery).length;
      const missing = [...acknowledged].filter((id) => !granted.has(id));
      process.stdout.write(`soak: ${ROUNDS} SIGKILLs, ${CLIENTS} clients, ${((Date.now() - started) / 1000).toFixed(1)} s\n` +
        `soak: acknowledged grants ${acknowledged.size}, grants in the log ${granted.size}, missing ${missing.length}, refused ${refused}\n` +
        `soak: records ${r.summary.records}, sessions ${r.summary.sessions}, torn tails recovered ${recoveries}, verified in ${verifyMs} ms\n`);
      expect(r.summary.sessions).toBe(ROUNDS + 1);
      expect(acknowledged.size).toBeGreaterThan(ROUNDS * 10);
      expect(missing).toEqual([]);
    } finally {
      for (const d of dirs) await rm(d, { recursive: true, force: true });
      await tpm.dispose();
    }
  }, 30 * 60_000);
});
