/**
 * A lease ends when the process holding it exits: `attestctl lease acquire` takes a lease and
 * exits, and the daemon ends that lease within a second, recording HOLDER_EXITED, instead of
 * letting a lease of a dead process read live until its TTL.
 */
import { describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSwtpm } from '../helpers/swtpm.js';
import { attestctl, startDaemon, testPolicy } from '../helpers/daemon.js';
import { decode, payloads } from '../helpers/audit-log.js';

describe('holder exit', () => {
  it('ends the lease of a holder that exited, and records why', async () => {
    const tpm = await startSwtpm();
    const stateDir = mkdtempSync(join(tmpdir(), 'attestd-holder-'));
    const d = await startDaemon({ tcti: tpm.tcti, stateDir, policy: testPolicy({ maxAge: '60s', ttl: '60s' }) });
    try {
      const got = await attestctl(['lease', 'acquire', '--json'], d.socket);
      expect(got.code).toBe(0);
      const leaseId = JSON.parse(got.stdout).lease_id as string;
      // attestctl has exited: its lease goes within a few holder checks.
      const status = await d.waitFor((s) => s.activeLeases === 0, 5_000);
      expect(status.activeLeases).toBe(0);
      await d.stop();
      const revoked = (await payloads(join(stateDir, 'audit'))).map(decode)
        .map((r) => r.leaseDecision).find((x) => x?.kind === 6 && x.leaseIds?.includes(leaseId));
      expect(revoked).toMatchObject({ reasonCode: 'HOLDER_EXITED' });
    } finally {
      await d.stop();
      await tpm.dispose();
      rmSync(stateDir, { recursive: true, force: true });
    }
  }, 40_000);
});
