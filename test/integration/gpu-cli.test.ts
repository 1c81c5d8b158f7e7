/** attestctl gpu inspect / parse-smi / verify-report, as an operator runs them. */
import { describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { ATTESTCTL, attestctl } from '../helpers/daemon.js';
import { fakeNvmlLibrary, twoGpuConfig, writeFakeNvmlConfig } from '../helpers/fake-nvml.js';

const NV = '../shared/fixtures/nvidia';

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [ATTESTCTL, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.on('exit', (code) => res({ code, stdout }));
  });
}

describe('attestctl gpu', () => {
  it('inspect measures the GPUs through NVML', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'attestd-gpucli-'));
    try {
      writeFakeNvmlConfig(join(dir, 'nvml.conf'), twoGpuConfig());
      const r = await run(['gpu', 'inspect', '--nvml', fakeNvmlLibrary(), '--json'], { FAKE_NVML_CONFIG: join(dir, 'nvml.conf') });
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out.measurement.source).toBe('nvml');
      expect(out.measurement.gpus).toHaveLength(2);
      expect(out.sha256).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('parse-smi reads nvidia-smi XML and refuses garbage', async () => {
    const ok = await attestctl(['gpu', 'parse-smi', `${NV}/nvidia-smi/telegraf_tesla-t4.xml`, '--json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).measurement.gpus[0].name).toBe('Tesla T4');
    const bad = await attestctl(['gpu', 'parse-smi', `${NV}/attestation/nvidia_device_identity_root_ca.pem`, '--json']);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout).error).toBe('NVIDIA_SMI_FAILED');
  });

  it('verify-report verifies the H100 report and fails a broken chain', async () => {
    const args = ['gpu', 'verify-report', `${NV}/attestation/nvtrust_h100_spdm_attestation_report.hex.txt`, '--nonce',
      '931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb', '--at', '2024-06-01T00:00:00Z', '--json'];
    const ok = await attestctl([...args, '--chain', `${NV}/attestation/nvtrust_h100_device_cert_chain.pem`]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    const bad = await attestctl([...args, '--chain', `${NV}/attestation/trustee_NEGATIVE_chain_missing_intermediate.pem`]);
    expect(bad.code).toBe(8);
  });
});
