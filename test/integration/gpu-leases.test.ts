/**
 * GPUs end to end through the fake NVML: the measurement is bound into every quote, a rule's
 * GPUs go into the lease, `attestctl run` shows the child exactly its leased GPUs, a drift of
 * one GPU revokes only the leases that name it, a driver change revokes everything, and the
 * audit log still verifies offline.
 */
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { startSwtpm } from '../helpers/swtpm.js';
import { startDaemon, spawnAttestctl, State } from '../helpers/daemon.js';
import { fakeNvmlLibrary, twoGpuConfig, writeFakeNvmlConfig } from '../helpers/fake-nvml.js';
import { akKey, verifyDir } from '../helpers/audit-log.js';
import { attestd } from '../../daemon/gen/proto.js';

const Kind = attestd.lease.v1.LeaseEvent.Kind;
const [GPU0, GPU1] = twoGpuConfig().gpus.map((g) => g.uuid.toLowerCase().replace(/^gpu-/, 'GPU-'));

function gpuPolicy(): string {
  const zero = '"' + '0'.repeat(64) + '"';
  return `version: 2
attestation: { interval: 500ms, max_age: 5s }
pcrs:
  sha256:
${[0, 1, 2, 3, 4, 5, 6, 7, 16].map((i) => `    ${i}: ${zero}`).join('\n')}
gpu:
  required: true
  driver_versions: ["550.90.07"]
  vbios_versions: { "NVIDIA H100 80GB HBM3": ["96.00.9F.00.01"] }
  cc_mode: on
rules:
  - name: trainer
    match: { uids: [${process.getuid?.() ?? 0}] }
    lease: { ttl: 30s, scopes: ["gpu"], gpus: all }
`;
}

describe('GPU evidence and per-GPU leases', () => {
  it('binds GPUs, scopes leases to them, and revokes only what a drift touches', async () => {
    const tpm = await startSwtpm();
    const dir = mkdtempSync(join(tmpdir(), 'attestd-gpu-'));
    const cfgPath = join(dir, 'nvml.conf');
    const cfg = twoGpuConfig();
    writeFakeNvmlConfig(cfgPath, cfg);
    const port = 20000 + Math.floor(Math.random() * 20000);
    const d = await startDaemon({ tcti: tpm.tcti, policy: gpuPolicy(), args: ['--nvml', fakeNvmlLibrary(), '--metrics', `127.0.0.1:${port}`],
      env: { FAKE_NVML_CONFIG: cfgPath } });
    try {
      const ak = (await d.status()).akPublicPem;
      const c = await d.client();
      const both = (await c.call({ acquireLease: {} })).acquireLease!.lease!;
      expect([...both.gpus!].sort()).toEqual([GPU0, GPU1].sort());
      const only0 = (await c.call({ acquireLease: { gpus: ['0'] } })).acquireLease!.lease!;
      expect(only0.gpus).toEqual([GPU0]);
      await expect(c.call({ acquireLease: { gpus: ['GPU-00000000-0000-0000-0000-000000000000'] } })).rejects.toMatchObject({ code: 'NO_MATCHING_RULE' });
      // An empty name is no GPU the rule grants either.
      await expect(c.call({ acquireLease: { gpus: [''] } })).rejects.toMatchObject({ code: 'NO_MATCHING_RULE' });

      // The supervised child sees exactly its leased GPU.
      const out = join(dir, 'visible');
      const run = spawnAttestctl(['run', '--gpus', GPU1!, '--', 'sh', '-c', `echo "$CUDA_VISIBLE_DEVICES" > ${out}`], d.socket);
      expect((await once(run, 'exit'))[0]).toBe(0);
      expect(readFileSync(out, 'utf8').trim()).toBe(GPU1);

      const events = new Map<string, number[]>();
      for (const l of [both, only0]) {
        events.set(l.leaseId!, []);
        await c.call({ watchLease: { leaseId: l.leaseId } }, (r) => events.get(l.leaseId!)!.push(r.leaseEvent!.kind ?? 0));
      }
      // GPU 1's VBIOS changes: the lease naming it goes, the GPU 0 lease stays.
      writeFakeNvmlConfig(cfgPath, { ...cfg, gpus: [cfg.gpus[0]!, { ...cfg.gpus[1]!, vbiosVersion: '96.00.9F.00.99' }] });
      const end = Date.now() + 5000;
      while (!events.get(both.leaseId!)!.includes(Kind.REVOKED) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      expect(events.get(both.leaseId!)).toContain(Kind.REVOKED);
      await c.call({ renewLease: { leaseId: only0.leaseId } });
      expect(events.get(only0.leaseId!)).not.toContain(Kind.REVOKED);
      expect((await d.status()).state).toBe(State.TRUSTED);
      await expect(c.call({ acquireLease: { gpus: ['1'] } })).rejects.toMatchObject({ code: 'NOT_TRUSTED' });
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toContain(`attestd_gpu_ok{uuid="${GPU0}"} 1`);
      expect(metrics).toContain(`attestd_gpu_ok{uuid="${GPU1}"} 0`);

      // A driver the policy does not allow: the whole host is untrusted.
      writeFakeNvmlConfig(cfgPath, { ...cfg, driverVersion: '535.00.01' });
      const s = await d.waitFor((st) => st.state === State.UNTRUSTED, 5000);
      expect(s.reasons.join('\n')).toContain('GPU_DRIVER_VERSION');
      expect(events.get(only0.leaseId!)).toContain(Kind.REVOKED);
      c.close();
      d.proc.kill('SIGTERM');
      await d.exited;
      const v = await verifyDir(join(d.stateDir, 'audit'), akKey(ak));
      if (!v.ok) throw v.failure;
    } finally {
      await d.stop();
      await tpm.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('GPU attestation reports in epochs', () => {
  it('asks each GPU for a report over its own nonce (binding and UUID), fails the GPU whose report does not verify, and records it', async () => {
    const { gpuNonce } = await import('../../daemon/verify/gpu-report/nonce.js');
    const { decode, payloads } = await import('../helpers/audit-log.js');
    const tpm = await startSwtpm();
    const dir = mkdtempSync(join(tmpdir(), 'attestd-gpuatt-'));
    const cfgPath = join(dir, 'nvml.conf');
    writeFakeNvmlConfig(cfgPath, twoGpuConfig());
    const policy = gpuPolicy().replace('  cc_mode: on\n', '  cc_mode: on\n  attestation: required\n');
    const d = await startDaemon({ tcti: tpm.tcti, policy, waitTrusted: false, args: ['--nvml', fakeNvmlLibrary()], env: { FAKE_NVML_CONFIG: cfgPath } });
    try {
      // The fake NVML's reports are not signed by an NVIDIA device: every GPU fails on its own,
      // the host stays TRUSTED, and no lease can name a GPU.
      const s = await d.waitFor((st) => st.state === State.TRUSTED && st.epoch >= 2, 5000);
      const ak = s.akPublicPem;
      const c = await d.client();
      await expect(c.call({ acquireLease: {} })).rejects.toMatchObject({ code: 'NOT_TRUSTED' });
      c.close();
      d.proc.kill('SIGTERM');
      await d.exited;
      const audit = join(d.stateDir, 'audit');
      const epochs = (await payloads(audit)).map(decode).filter((r) => r.epoch).map((r) => attestd.audit.v1.EpochResult.decode(r.epoch!.result!));
      const e = epochs.find((x) => (x.gpu?.reports?.length ?? 0) > 0)!;
      expect(e.gpu!.reports).toHaveLength(2);
      // Each GPU was asked over its own nonce: the binding and its UUID.
      for (const r of e.gpu!.reports!) expect(Buffer.from(r.report!).includes(gpuNonce(Buffer.from(e.binding!), r.uuid!))).toBe(true);
      expect(e.gpu!.reportNonceVersion).toBe(2);
      expect(e.reasons.some((r) => r.code?.startsWith('GPU_REPORT'))).toBe(true);
      const v = await verifyDir(audit, akKey(ak));
      if (!v.ok) throw v.failure;
    } finally {
      await d.stop();
      await tpm.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
