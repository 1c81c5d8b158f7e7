/** Faults from the spine issue: TPM gone at start or mid-run, invalid policy, unwritable audit log. */
import { describe, it, expect } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSwtpm, tpm2 } from '../helpers/swtpm.js';
import { startDaemon, testPolicy, State } from '../helpers/daemon.js';
import { canMount, mountSmallFs } from '../helpers/tmpfs.js';
import { attestd } from '../../daemon/gen/proto.js';
import { akKey, verifyDir } from '../helpers/audit-log.js';

const Kind = attestd.lease.v1.LeaseEvent.Kind;

describe('TPM faults', () => {
  it('a TPM killed mid-run revokes leases with a clear reason; the daemon recovers when it returns', async () => {
    const tpm = await startSwtpm();
    const d = await startDaemon({ tcti: tpm.tcti });
    try {
      const c = await d.client();
      const lease = (await c.call({ acquireLease: {} })).acquireLease!.lease!;
      const events: attestd.lease.v1.LeaseEvent[] = [];
      await c.call({ watchLease: { leaseId: lease.leaseId } }, (r) => events.push(r.leaseEvent as attestd.lease.v1.LeaseEvent));
      await tpm.kill();
      const s = await d.waitFor((st) => st.state === State.UNTRUSTED, 5000);
      expect(s.reasons.join('\n')).toContain('TPM_UNAVAILABLE');
      expect(events.find((e) => e.kind === Kind.REVOKED)).toBeDefined();
      await expect(c.call({ acquireLease: {} })).rejects.toMatchObject({ code: 'NOT_TRUSTED' });
      await tpm.start();
      const back = await d.waitFor((st) => st.state === State.TRUSTED, 5000);
      expect(back.epoch).toBeGreaterThan(s.epoch);
      expect((await c.call({ acquireLease: {} })).acquireLease!.lease!.leaseId).toHaveLength(32);
      c.close();
    } finally {
      await d.stop();
      await tpm.dispose();
    }
  });

  it('starts UNTRUSTED when the TPM is unreachable, and becomes TRUSTED once it answers', async () => {
    const tpm = await startSwtpm();
    await tpm.stop();
    const d = await startDaemon({ tcti: tpm.tcti, waitTrusted: false });
    try {
      const s = await d.waitFor((st) => st.state === State.UNTRUSTED, 5000);
      expect(s.reasons.join('\n')).toContain('TPM_UNAVAILABLE');
      expect(s.akPublicPem).toBe('');
      await tpm.start();
      const ok = await d.waitFor((st) => st.state === State.TRUSTED, 5000);
      expect(ok.epoch).toBeGreaterThan(s.epoch);
    } finally {
      await d.stop();
      await tpm.dispose();
    }
  });
});

describe('policy faults', () => {
  it('refuses to start with an invalid policy, naming file, line and field', async () => {
    const bad = testPolicy().replace('interval: 500ms', 'interval: soon');
    const err = await startDaemon({ tcti: 'swtpm:path=/nonexistent/tpm.sock', policy: bad }).catch((e) => e);
    expect(err.exitCode).toBe(3);
    expect(err.output).toMatch(/policy\.yaml:3:\d+: attestation\.interval/);
  });

  it('an invalid policy on SIGHUP makes the host UNTRUSTED until a valid one loads', async () => {
    const tpm = await startSwtpm();
    const d = await startDaemon({ tcti: tpm.tcti });
    try {
      const c = await d.client();
      await c.call({ acquireLease: {} });
      await writeFile(d.policyPath, 'version: 1\nrules: [\n');
      d.proc.kill('SIGHUP');
      const s = await d.waitFor((st) => st.state === State.UNTRUSTED, 5000);
      expect(s.reasons.join('\n')).toContain('POLICY_INVALID');
      expect(s.activeLeases).toBe(0);
      await expect(c.call({ acquireLease: {} })).rejects.toMatchObject({ code: 'NOT_TRUSTED' });
      await writeFile(d.policyPath, testPolicy({ ttl: '10s' }));
      d.proc.kill('SIGHUP');
      await d.waitFor((st) => st.state === State.TRUSTED, 5000);
      expect((await c.call({ acquireLease: {} })).acquireLease!.lease!.rule).toBe('tests');
      c.close();
    } finally {
      await d.stop();
      await tpm.dispose();
    }
  });
});

describe.skipIf(!canMount())('audit faults', () => {
  it('grants and renews nothing while the audit log cannot be written, and recovers after', async () => {
    const tpm = await startSwtpm();
    const fs = mountSmallFs(512);
    const d = await startDaemon({ tcti: tpm.tcti, stateDir: join(fs.dir, 'state') });
    try {
      const c = await d.client();
      const lease = (await c.call({ acquireLease: {} })).acquireLease!.lease!;
      fs.fill();
      // The file's last page may still hold a few records; past it every decision fails.
      let refusal: unknown;
      for (let i = 0; i < 100 && !refusal; i++) refusal = await c.call({ acquireLease: {} }).then(() => undefined, (e) => e);
      expect(refusal).toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
      await expect(c.call({ acquireLease: {} })).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
      await expect(c.call({ renewLease: { leaseId: lease.leaseId } })).rejects.toMatchObject({ code: expect.stringMatching(/AUDIT_UNAVAILABLE|LEASE_NOT_FOUND/) });
      // The next epoch cannot be recorded either, so the host stops being trusted.
      const s = await d.waitFor((st) => st.state === State.UNTRUSTED, 5000);
      expect(s.reasons.join('\n')).toContain('AUDIT_UNAVAILABLE');
      fs.free();
      await d.waitFor((st) => st.state === State.TRUSTED, 5000);
      expect((await c.call({ acquireLease: {} })).acquireLease!.lease!.leaseId).toHaveLength(32);
      c.close();
      // The log survived the full disk whole: it verifies offline.
      const ak = (await d.status()).akPublicPem;
      d.proc.kill('SIGTERM');
      await d.exited;
      const v = await verifyDir(join(d.stateDir, 'audit'), akKey(ak));
      if (!v.ok) throw v.failure;
    } finally {
      await d.stop();
      fs.unmount();
      await tpm.dispose();
    }
  });
});

describe('tpm2-tools drive the daemon', () => {
  it('tpm2_pcrextend on another PCR than the policy pins leaves the host trusted', async () => {
    const tpm = await startSwtpm();
    const d = await startDaemon({ tcti: tpm.tcti });
    try {
      expect((await tpm2(['pcrextend', `23:sha256=${'22'.repeat(32)}`], tpm.tcti)).code).toBe(0);
      const before = (await d.status()).epoch;
      const s = await d.waitFor((st) => st.epoch >= before + 2, 5000);
      expect(s.state).toBe(State.TRUSTED);
    } finally {
      await d.stop();
      await tpm.dispose();
    }
  });
});
