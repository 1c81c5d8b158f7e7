/**
 * The passing path of GPU attestation, end to end: the fake NVML signs each GPU's SPDM report
 * over the nonce the daemon asks for with a test device key, the daemon judges the chains
 * under the operator's --gpu-roots and the measurements against signed RIMs from the policy's
 * folder, the host is TRUSTED and a lease names the GPUs; then one GPU's evidence drifts (a
 * measurement the RIM does not allow, then a report signed by a key of no trusted chain) and
 * only the leases naming it are revoked; `attestctl audit verify --gpu-roots` re-appraises the
 * log to the same verdicts.
 */
import { describe, it, expect } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSwtpm } from '../helpers/swtpm.js';
import { attestctl, startDaemon, State } from '../helpers/daemon.js';
import { fakeNvmlLibrary, twoGpuConfig, writeFakeNvmlConfig, type FakeNvmlConfig } from '../helpers/fake-nvml.js';
import { makeTestPki, rimXml, signRim, testDigest, writeGpuRoots, type TestPki } from '../helpers/gpu-pki.js';
import { decode, payloads } from '../helpers/audit-log.js';
import { attestd } from '../../daemon/gen/proto.js';

const Kind = attestd.lease.v1.LeaseEvent.Kind;
const [GPU0, GPU1] = twoGpuConfig().gpus.map((g) => g.uuid);
const MEASUREMENTS = [testDigest('firmware'), testDigest('driver'), testDigest('vbios')];

function policy(rimDir: string): string {
  const zero = '"' + '0'.repeat(64) + '"';
  return `version: 2
attestation: { interval: 500ms, max_age: 5s }
pcrs:
  sha256:
${[0, 1, 2, 3, 4, 5, 6, 7, 16].map((i) => `    ${i}: ${zero}`).join('\n')}
gpu:
  required: true
  driver_versions: ["550.90.07"]
  cc_mode: on
  attestation: required
  rims: { dir: ${rimDir}, required: true }
rules:
  - name: trainer
    match: { uids: [${process.getuid?.() ?? 0}] }
    lease: { ttl: 30s, scopes: ["gpu"], gpus: all }
`;
}

function nvml(dev: [TestPki, TestPki], measurements: [Buffer[], Buffer[]] = [MEASUREMENTS, MEASUREMENTS]): FakeNvmlConfig {
  const cfg = twoGpuConfig();
  cfg.gpus = cfg.gpus.map((g, i) => ({ ...g, attestation: { keyPath: dev[i]!.leafKeyPath, chainPath: dev[i]!.chainPath, measurements: measurements[i]! } }));
  return cfg;
}

async function until(what: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!what() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
}

describe('GPU attestation reports that pass', () => {
  it('TRUSTED with leases on both GPUs; a drifted measurement or a foreign key revokes only that GPU; the log verifies offline', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'attestd-gpupass-'));
    const dev: [TestPki, TestPki] = [makeTestPki(dir, 'gpu0'), makeTestPki(dir, 'gpu1')];
    const rimPki = makeTestPki(dir, 'rim');
    const stranger = makeTestPki(dir, 'stranger');
    const roots = writeGpuRoots(dir, dev[0], rimPki);
    writeFileSync(join(roots, 'device', 'root1.pem'), dev[1].rootPem);
    const rimDir = join(dir, 'rims');
    mkdirSync(rimDir);
    writeFileSync(join(rimDir, 'driver.xml'), signRim(rimXml('550.90.07', [[0, MEASUREMENTS[0]!], [1, MEASUREMENTS[1]!]]), rimPki));
    writeFileSync(join(rimDir, 'vbios.xml'), signRim(rimXml('96.00.9F.00.01', [[2, MEASUREMENTS[2]!]]), rimPki));
    const cfgPath = join(dir, 'nvml.conf');
    writeFakeNvmlConfig(cfgPath, nvml(dev));
    const tpm = await startSwtpm();
    const d = await startDaemon({ tcti: tpm.tcti, policy: policy(rimDir), args: ['--nvml', fakeNvmlLibrary(), '--gpu-roots', roots],
      env: { FAKE_NVML_CONFIG: cfgPath } });
    try {
      const ak = (await d.status()).akPublicPem;
      const c = await d.client();
      const both = (await c.call({ acquireLease: {} })).acquireLease!.lease!;
      expect([...both.gpus!].sort()).toEqual([GPU0, GPU1].sort());
      const only0 = (await c.call({ acquireLease: { gpus: ['0'] } })).acquireLease!.lease!;
      const only1 = (await c.call({ acquireLease: { gpus: ['1'] } })).acquireLease!.lease!;
      const events = new Map<string, number[]>();
      for (const l of [both, only0, only1]) {
        events.set(l.leaseId!, []);
        await c.call({ watchLease: { leaseId: l.leaseId } }, (r) => events.get(l.leaseId!)!.push(r.leaseEvent!.kind ?? 0));
      }

      // GPU 1 now measures something its RIM does not allow at block 2.
      writeFakeNvmlConfig(cfgPath, nvml(dev, [MEASUREMENTS, [MEASUREMENTS[0]!, testDigest('patched driver'), MEASUREMENTS[2]!]]));
      await until(() => events.get(only1.leaseId!)!.includes(Kind.REVOKED), 6000);
      expect(events.get(only1.leaseId!)).toContain(Kind.REVOKED);
      expect(events.get(both.leaseId!)).toContain(Kind.REVOKED);
      expect((await d.status()).state).toBe(State.TRUSTED);
      await c.call({ renewLease: { leaseId: only0.leaseId } });
      await expect(c.call({ acquireLease: { gpus: ['1'] } })).rejects.toMatchObject({ code: 'NOT_TRUSTED' });

      // GPU 0's report is now signed by a key of no trusted chain: its lease goes too.
      writeFakeNvmlConfig(cfgPath, nvml([{ ...dev[0], leafKeyPath: stranger.leafKeyPath }, dev[1]]));
      await until(() => events.get(only0.leaseId!)!.includes(Kind.REVOKED), 6000);
      expect(events.get(only0.leaseId!)).toContain(Kind.REVOKED);
      c.close();
      d.proc.kill('SIGTERM');
      await d.exited;

      const audit = join(d.stateDir, 'audit');
      const epochs = (await payloads(audit)).map(decode).filter((r) => r.epoch).map((r) => attestd.audit.v1.EpochResult.decode(r.epoch!.result!));
      const passing = epochs.find((e) => e.pass && (e.gpu?.reports?.length ?? 0) === 2 && e.reasons.length === 0);
      expect(passing?.gpu?.rims?.map((r) => r.name)).toEqual(['driver.xml', 'vbios.xml']);
      const reasons = epochs.flatMap((e) => e.reasons.map((r) => `${r.code}: ${r.message}`));
      expect(reasons.find((r) => r.startsWith('GPU_MEASUREMENT_MISMATCH'))).toMatch(new RegExp(`GPU ${GPU1}: measurement index 1 \\(SPDM block 2\\)`));
      expect(reasons.find((r) => r.startsWith('GPU_REPORT_SIGNATURE_INVALID'))).toContain(`GPU ${GPU0}`);
      const akPath = join(dir, 'ak.pem');
      writeFileSync(akPath, ak);
      const ok = await attestctl(['audit', 'verify', audit, '--ak', akPath, '--gpu-roots', roots]);
      expect(ok.stdout, ok.stderr).toMatch(/^verified /);
      expect(ok.code).toBe(0);
      // The same log under the pinned NVIDIA roots: the passing GPU verdicts do not re-appraise.
      const pinned = await attestctl(['audit', 'verify', audit, '--ak', akPath]);
      expect(pinned.code).toBe(8);
      expect(pinned.stdout).toMatch(/reappraisal/);
    } finally {
      await d.stop();
      await tpm.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
