/** Socket file handling and restarts: mode 0660, stale sockets, a live daemon kept, old leases dead. */
import { describe, it, expect } from 'vitest';
import { statSync } from 'node:fs';
import { startSwtpm } from '../helpers/swtpm.js';
import { attestctl, spawnAttestctl, startDaemon, State } from '../helpers/daemon.js';
import { AttestdClient } from '../../daemon/client/client.js';
import { spawn } from 'node:child_process';
import { DAEMON } from '../helpers/daemon.js';

describe('daemon lifecycle', () => {
  it('serves on a 0660 socket, refuses a second daemon on it, replaces a stale one, and a restart kills old leases', async () => {
    const tpm = await startSwtpm();
    const d = await startDaemon({ tcti: tpm.tcti });
    try {
      expect(statSync(d.socket).mode & 0o777).toBe(0o660);

      // A second daemon on the same socket must not steal it.
      const second = spawn(process.execPath, [DAEMON, '--tcti', tpm.tcti, '--policy', d.policyPath, '--state-dir', `${d.dir}/state2`, '--socket', d.socket]);
      let err = '';
      second.stderr.on('data', (b) => (err += b));
      const code = await new Promise((r) => second.on('exit', r));
      expect(code).toBe(1);
      expect(err).toContain('another daemon is serving');
      expect((await d.status()).state).toBe(State.TRUSTED);

      // A lease and a watcher from before the restart.
      const c = await d.client();
      const lease = (await c.call({ acquireLease: {} })).acquireLease!.lease!;
      const oldKey = Buffer.from((await d.status()).sessionPublicKey);
      const watch = spawnAttestctl(['lease', 'watch', lease.leaseId!, '--json'], d.socket);
      let watchOut = '';
      watch.stdout!.on('data', (b) => (watchOut += b));
      const watchExit = new Promise((r) => watch.on('exit', r));
      while (!watchOut.includes('ACTIVE')) await new Promise((r) => setTimeout(r, 20));

      // Crash: the socket file stays behind; a new daemon must take it over.
      d.proc.kill('SIGKILL');
      await d.exited;
      expect(await watchExit).toBe(3); // the watcher lost its daemon
      const d2 = await startDaemon({ tcti: tpm.tcti, stateDir: d.stateDir, policy: undefined });
      try {
        const s = await d2.status();
        expect(Buffer.from(s.sessionPublicKey).equals(oldKey)).toBe(false);
        const c2 = await AttestdClient.connect(d2.socket);
        await expect(c2.call({ renewLease: { leaseId: lease.leaseId } })).rejects.toMatchObject({ code: 'LEASE_NOT_FOUND' });
        const v = (await c2.call({ verifyLease: { token: lease.token } })).verifyLease!;
        expect(v.signatureValid).toBe(false);
        c2.close();
      } finally {
        await d2.stop();
      }
      c.close();
    } finally {
      await d.stop();
      await tpm.dispose();
    }
  });

  it('lease watch prints events until the lease is released', async () => {
    const tpm = await startSwtpm();
    const d = await startDaemon({ tcti: tpm.tcti });
    try {
      const c = await d.client();
      const lease = (await c.call({ acquireLease: {} })).acquireLease!.lease!;
      const watch = spawnAttestctl(['lease', 'watch', lease.leaseId!, '--json'], d.socket);
      let out = '';
      watch.stdout!.on('data', (b) => (out += b));
      const exit = new Promise((r) => watch.on('exit', r));
      while (!out.includes('ACTIVE')) await new Promise((r) => setTimeout(r, 20));
      await c.call({ releaseLease: { leaseId: lease.leaseId } });
      expect(await exit).toBe(0);
      const events = out.trim().split('\n').map((l) => JSON.parse(l).event);
      expect(events[0]).toBe('ACTIVE');
      expect(events.at(-1)).toBe('RELEASED');
      expect((await attestctl(['lease', 'watch', lease.leaseId!], d.socket)).code).toBe(4);
      c.close();
    } finally {
      await d.stop();
      await tpm.dispose();
    }
  });
});
