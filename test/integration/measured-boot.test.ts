/**
 * Measured boot and IMA appraised by the daemon on a software TPM: a boot log and an IMA list
 * that agree with the quote pass; a file outside the allowlist is named by its IMA entry; a
 * measurement the event log does not explain is named by PCR; the audit log, with the recorded
 * event log and IMA lines, verifies offline.
 */
import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSwtpm } from '../helpers/swtpm.js';
import { startDaemon, State } from '../helpers/daemon.js';
import { MeasuredBoot, EV } from '../helpers/measured-boot.js';
import { akKey, verifyDir } from '../helpers/audit-log.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

describe('measured boot and IMA', () => {
  it('appraises what booted and what ran, naming the event or entry that fails', async () => {
    const tpm = await startSwtpm();
    const dir = mkdtempSync(join(tmpdir(), 'attestd-boot-'));
    const boot = new MeasuredBoot(tpm.tcti, join(dir, 'binary_bios_measurements'), join(dir, 'ascii_runtime_measurements'));
    const app = digest('shimx64.efi');
    await boot.firmware(app);
    await boot.bootAggregate();
    await boot.ima('/usr/bin/python3.11', digest('python'));
    const policy = `version: 2
attestation: { interval: 500ms, max_age: 5s }
pcrs: { sha256: { 16: "${'0'.repeat(64)}" } }
boot:
  event_log: ${boot.eventLogPath}
  bank: sha256
  secure_boot: any
  forbid_test_keys: true
  boot_applications: { sha256: ["${app.toString('hex')}"] }
ima:
  list: ${boot.imaPath}
  bank: sha256
  allow: [ { path: /usr/bin/python3.11, sha256: "${digest('python').toString('hex')}" } ]
  exclude: ["/tmp/"]
rules:
  - name: all
    match: { uids: [${process.getuid?.() ?? 0}] }
    lease: { ttl: 30s, scopes: ["any"] }
`;
    const d = await startDaemon({ tcti: tpm.tcti, policy });
    try {
      const ak = (await d.status()).akPublicPem;
      // More allowed and excluded executions: still trusted; the list is consumed as it grows.
      await boot.ima('/tmp/scratch.sh', digest('scratch'));
      await boot.ima('/usr/bin/python3.11', digest('python'));
      const before = (await d.status()).epoch;
      const ok = await d.waitFor((s) => s.epoch >= before + 2, 5000);
      expect(ok.state).toBe(State.TRUSTED);

      // An executable outside the allowlist.
      await boot.ima('/usr/local/bin/miner', digest('miner'));
      const s = await d.waitFor((st) => st.state === State.UNTRUSTED, 5000);
      expect(s.reasons.join('\n')).toMatch(/\/usr\/local\/bin\/miner/);

      // A boot-time measurement the event log does not explain.
      await boot.event(4, EV.EFI_BOOT_SERVICES_APPLICATION, Buffer.alloc(32), digest('bootkit'), true);
      const s2 = await d.waitFor((st) => st.reasons.some((r) => r.includes('EVENTLOG_REPLAY_MISMATCH')), 5000);
      expect(s2.reasons.join('\n')).toMatch(/PCR 4/);

      d.proc.kill('SIGTERM');
      await d.exited;
      const v = await verifyDir(join(d.stateDir, 'audit'), akKey(ak));
      if (!v.ok) throw v.failure;
      expect(v.summary.passingEpochs).toBeGreaterThan(1);
    } finally {
      await d.stop();
      await tpm.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('attestctl policy init', () => {
  it('writes a policy from the host as it is, which the daemon then finds TRUSTED', async () => {
    const { attestctl } = await import('../helpers/daemon.js');
    const { readFileSync } = await import('node:fs');
    const tpm = await startSwtpm();
    const dir = mkdtempSync(join(tmpdir(), 'attestd-init-'));
    const boot = new MeasuredBoot(tpm.tcti, join(dir, 'binary_bios_measurements'), join(dir, 'ascii_runtime_measurements'));
    await boot.firmware(digest('grubx64.efi'));
    await boot.bootAggregate();
    await boot.ima('/usr/bin/bash', digest('bash'));
    try {
      const out = join(dir, 'policy.yaml');
      const r = await attestctl(['policy', 'init', '--tcti', tpm.tcti, '--event-log', boot.eventLogPath, '--ima', boot.imaPath, '--output', out]);
      expect(r.code, r.stderr).toBe(0);
      const text = readFileSync(out, 'utf8');
      expect(text).toContain(digest('grubx64.efi').toString('hex'));
      expect(text).toContain('/usr/bin/bash');
      expect((await attestctl(['policy', 'check', out])).code).toBe(0);
      const d = await startDaemon({ tcti: tpm.tcti, policy: text });
      await d.stop();
      expect((await attestctl(['policy', 'init', '--tcti', tpm.tcti, '--output', out])).code).not.toBe(0); // never overwrites
    } finally {
      await tpm.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves IMA out, saying why, when the list holds nothing beyond boot_aggregate yet', async () => {
    const { attestctl } = await import('../helpers/daemon.js');
    const { readFileSync } = await import('node:fs');
    const tpm = await startSwtpm();
    const dir = mkdtempSync(join(tmpdir(), 'attestd-init-'));
    const boot = new MeasuredBoot(tpm.tcti, join(dir, 'binary_bios_measurements'), join(dir, 'ascii_runtime_measurements'));
    await boot.firmware(digest('grubx64.efi'));
    await boot.bootAggregate();
    try {
      const out = join(dir, 'policy.yaml');
      const r = await attestctl(['policy', 'init', '--tcti', tpm.tcti, '--event-log', boot.eventLogPath, '--ima', boot.imaPath, '--output', out]);
      expect(r.code, r.stderr).toBe(0);
      const text = readFileSync(out, 'utf8');
      expect(text).not.toMatch(/^ima:/m);
      expect(text).toMatch(/# ima: left out: .* holds nothing beyond boot_aggregate yet/);
      expect((await attestctl(['policy', 'check', out])).code).toBe(0);
    } finally {
      await tpm.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
