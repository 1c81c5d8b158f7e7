/**
 * A planned update does not flap leases: a PCR value the policy's update window allows keeps
 * the host TRUSTED until the window ends, and grants made under it are marked so in the log.
 */
import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { startSwtpm, tpm2 } from '../helpers/swtpm.js';
import { startDaemon, State } from '../helpers/daemon.js';
import { akKey, decode, payloads, verifyDir } from '../helpers/audit-log.js';

describe('update windows', () => {
  it('accepts the next value until the window ends, and marks the grants made under it', async () => {
    const zero = Buffer.alloc(32);
    const step = Buffer.alloc(32, 0x44);
    const next = createHash('sha256').update(zero).update(step).digest();
    const until = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
    const policy = `version: 2
attestation: { interval: 500ms, max_age: 5s }
pcrs: { sha256: { 16: "${zero.toString('hex')}" } }
update_window:
  until: "${until}"
  pcrs: { sha256: { 16: ["${next.toString('hex')}"] } }
rules:
  - name: all
    match: { uids: [${process.getuid?.() ?? 0}] }
    lease: { ttl: 30s, scopes: ["any"] }
`;
    const tpm = await startSwtpm();
    const d = await startDaemon({ tcti: tpm.tcti, policy });
    try {
      const ak = (await d.status()).akPublicPem;
      const c = await d.client();
      const before = (await c.call({ acquireLease: {} })).acquireLease!.lease!;
      expect((await tpm2(['pcrextend', `16:sha256=${step.toString('hex')}`], tpm.tcti)).code).toBe(0);
      const e = (await d.status()).epoch;
      const s = await d.waitFor((st) => st.epoch >= e + 2, 5000);
      expect(s.state).toBe(State.TRUSTED);
      await c.call({ renewLease: { leaseId: before.leaseId } });
      const during = (await c.call({ acquireLease: {} })).acquireLease!.lease!;
      c.close();
      d.proc.kill('SIGTERM');
      await d.exited;
      const audit = join(d.stateDir, 'audit');
      const grants = (await payloads(audit)).map(decode).filter((r) => r.leaseDecision?.kind === 1).map((r) => r.leaseDecision!);
      expect(grants.find((g) => g.leaseId === before.leaseId)!.underUpdateWindow).toBe(false);
      expect(grants.find((g) => g.leaseId === during.leaseId)!.underUpdateWindow).toBe(true);
      const v = await verifyDir(audit, akKey(ak));
      if (!v.ok) throw v.failure;
    } finally {
      await d.stop();
      await tpm.dispose();
    }
  });
});
