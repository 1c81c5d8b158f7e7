/**
 * SIGKILL under load, again and again: after each restart the log recovers, and in the end it
 * verifies offline and holds every grant a client saw acknowledged (the test keeps its own list).
 */
import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { startSwtpm } from '../helpers/swtpm.js';
import { startDaemon, testPolicy, type RunningDaemon } from '../helpers/daemon.js';
import { AttestdClient } from '../../daemon/client/client.js';
import { akKey, decode, payloads, verifyDir } from '../helpers/audit-log.js';

describe('crash safety', () => {
  it('loses no acknowledged grant across repeated SIGKILLs, and the log verifies', async () => {
    const tpm = await startSwtpm();
    const acknowledged = new Set<string>();
    const dirs: string[] = [];
    let stateDir: string | undefined;
    let akPem = '';
    try {
      for (let round = 0; round < 5; round++) {
        const d: RunningDaemon = await startDaemon({ tcti: tpm.tcti, stateDir, policy: testPolicy({ maxAge: '30s' }) });
        dirs.push(d.dir);
        stateDir ??= d.stateDir;
        akPem ||= (await d.status()).akPublicPem;
        // Eight clients acquire as fast as they can; the daemon is killed mid-stream.
        const clients = await Promise.all(Array.from({ length: 8 }, () => AttestdClient.connect(d.socket)));
        let stop = false;
        const load = clients.map(async (c) => {
          while (!stop) {
            try {
              const l = (await c.call({ acquireLease: {} })).acquireLease!.lease!;
              acknowledged.add(l.leaseId!);
            } catch {
              return; // the daemon died under us
            }
          }
        });
        await new Promise((r) => setTimeout(r, 150 + round * 70));
        d.proc.kill('SIGKILL');
        await d.exited;
        stop = true;
        await Promise.all(load);
        for (const c of clients) c.close();
      }
      expect(acknowledged.size).toBeGreaterThan(50);
      // One clean start: it recovers the torn tail, then stops.
      const last = await startDaemon({ tcti: tpm.tcti, stateDir, policy: testPolicy({ maxAge: '30s' }) });
      dirs.push(last.dir);
      last.proc.kill('SIGTERM');
      await last.exited;
      const audit = join(stateDir!, 'audit');
      const r = await verifyDir(audit, akKey(akPem));
      if (!r.ok) throw r.failure;
      expect(r.summary.sessions).toBe(6);
      const granted = new Set((await payloads(audit)).map(decode).filter((x) => x.leaseDecision?.kind === 1).map((x) => x.leaseDecision!.leaseId));
      const missing = [...acknowledged].filter((id) => !granted.has(id));
      expect(missing).toEqual([]);
    } finally {
      for (const d of dirs) await rm(d, { recursive: true, force: true });
      await tpm.dispose();
    }
  });
});
