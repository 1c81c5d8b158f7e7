/** The nvidia-smi runner with stand-in scripts, the NVML return-code names, the host inventory. */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectHostInventory } from '../../daemon/evidence/gpu/host-inventory.js';
import { collectNvidiaSmi, runNvidiaSmi } from '../../daemon/evidence/gpu/nvidia-smi.js';
import { NVML_RETURN_NAMES, nvmlReturnName } from '../../daemon/evidence/gpu/nvml-return.js';

const FIXTURE = new URL('../../../shared/fixtures/nvidia/nvidia-smi/telegraf_tesla-t4.xml', import.meta.url);
let dir: string;

function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'attestd-smi-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('nvidia-smi runner', () => {
  it('runs `-q -x` and parses what it prints', async () => {
    const smi = script('ok', `[ "$1 $2" = "-q -x" ] || exit 2\ncat '${FIXTURE.pathname}'`);
    const m = await collectNvidiaSmi({ path: smi }, 'libnvidia-ml.so.1 not found');
    expect(m).toMatchObject({ source: 'nvidia-smi', noDriverReason: 'libnvidia-ml.so.1 not found', driverVersion: '515.105.01' });
    expect(m.gpus.map((g) => g.name)).toEqual(['Tesla T4']);
  });

  it('fails with NVIDIA_SMI_FAILED and a reason for every way the program can fail', async () => {
    const cases: [Parameters<typeof runNvidiaSmi>[0], string][] = [
      [{ path: join(dir, 'absent') }, 'not found'],
      [{ path: script('fails', 'echo "NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver."\nexit 9') },
        'exited with status 9: NVIDIA-SMI has failed'],
      [{ path: script('slow', 'exec sleep 5'), timeoutMs: 200 }, 'did not finish within 200 ms'],
      [{ path: script('chatty', 'head -c 200000 /dev/zero'), maxBytes: 1000 }, 'output exceeded 1000 bytes'],
    ];
    for (const [options, reason] of cases) {
      await expect(runNvidiaSmi(options)).rejects.toMatchObject({
        code: 'NVIDIA_SMI_FAILED', message: expect.stringContaining(reason),
      });
    }
    await expect(collectNvidiaSmi({ path: script('junk', 'echo not xml') }))
      .rejects.toMatchObject({ code: 'NVIDIA_SMI_FAILED' });
  });
});

describe('NVML return codes', () => {
  it('names every code of nvml.h, and keeps unknown numbers visible', () => {
    const codes = Object.keys(NVML_RETURN_NAMES).map(Number);
    expect(codes).toEqual([...Array.from({ length: 31 }, (_, i) => i), 999]);
    expect(nvmlReturnName(0)).toBe('NVML_SUCCESS');
    expect(nvmlReturnName(15)).toBe('NVML_ERROR_GPU_IS_LOST');
    expect(nvmlReturnName(30)).toBe('NVML_ERROR_RESET_TYPE_NOT_SUPPORTED');
    expect(nvmlReturnName(999)).toBe('NVML_ERROR_UNKNOWN');
    expect(nvmlReturnName(31)).toBe('NVML_ERROR_UNRECOGNIZED(31)');
    expect(new Set(Object.values(NVML_RETURN_NAMES)).size).toBe(codes.length);
  });
});

describe('host inventory', () => {
  it('describes the OS, kernel, CPU and memory of this machine', async () => {
    const inv = await collectHostInventory();
    expect(inv.os.kernel).toBe(release());
    expect(inv.os.platform).toBe('linux');
    expect(inv.cpu.cores).toBeGreaterThan(0);
    expect(inv.memory.totalBytes).toBeGreaterThan(0);
    expect(Array.isArray(inv.graphics)).toBe(true);
  });
});
