/**
 * A TPM reset (a reboot, as the TPM sees it) is noticed from the quote's clock info even when
 * the PCRs still match: every lease from before is revoked, the epoch records the chain's end,
 * and the offline verifier agrees.
 */
import { describe, it, expect } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { startSwtpm, tpm2 } from '../helpers/swtpm.js';
import { startDaemon, State } from '../helpers/daemon.js';
import { akKey, decode, payloads, verifyDir } from '../helpers/audit-log.js';
import { attestd } from '../../daemon/gen/proto.js';

const run = promisify(execFile);

describe('TPM reset awareness', () => {
  it('ends the lease chain on a TPM reset, records it, and the log verifies', async () => {
    const tpm = await startSwtpm();
    const d = await startDaemon({ tcti: tpm.tcti });
    try {
      const ak = (await d.status()).akPublicPem;
      const c = await d.client();
      const lease = (await c.call({ acquireLease: {} })).acquireLease!.lease!;
      const events: attestd.lease.v1.LeaseEvent.$Properties[] = [];
      await c.call({ watchLease: { leaseId: lease.leaseId } }, (r) => events.push(r.leaseEvent!));
      const before = (await d.status()).epoch;
      // Power-cycle the TPM through swtpm's control channel, then start it up again: same PCR
      // values (all zero), but resetCount moves.
      await run('swtpm_ioctl', ['--unix', `${tpm.socketPath}.ctrl`, '-i']);
      expect((await tpm2(['startup', '-c'], tpm.tcti)).code).toBe(0);
      await d.waitFor((s) => s.state === State.TRUSTED && s.epoch > before + 2, 10_000);
      expect(events.some((e) => e.kind === attestd.lease.v1.LeaseEvent.Kind.REVOKED)).toBe(true);
      await expect(c.call({ renewLease: { leaseId: lease.leaseId } })).rejects.toMatchObject({ code: 'LEASE_NOT_FOUND' });
      c.close();
      d.proc.kill('SIGTERM');
      await d.exited;
      const audit = join(d.stateDir, 'audit');
      const ended = (await payloads(audit)).map(decode).filter((r) => r.epoch)
        .map((r) => attestd.audit.v1.EpochResult.decode(r.epoch!.result!)).filter((r) => r.chainEnded);
      expect(ended.map((r) => r.chainEnded!.code)).toEqual(['TPM_RESET']);
      const v = await verifyDir(audit, akKey(ak));
      if (!v.ok) throw v.failure;
    } finally {
      await d.stop();
      await tpm.dispose();
    }
  });
});
