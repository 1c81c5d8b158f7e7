/**
 * The fake NVML (test/fake-nvml/fake_nvml.c) for the GPU benchmark: built with the project's
 * build script into a temporary folder, and configured through the key=value file named by
 * FAKE_NVML_CONFIG, which the fake reads again on every nvmlInit_v2 (so one process can
 * switch between configurations from one collection to the next).
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from './processes.js';

/** Builds libnvidia-ml.so.1 into `dir` and returns its path. */
export function buildFakeNvml(dir: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [join(ROOT, 'test/fake-nvml/build.sh'), dir], (err, _stdout, stderr) => {
      if (err) reject(new Error(`fake NVML build failed: ${stderr || err.message}`));
      else resolve(join(dir, 'libnvidia-ml.so.1'));
    });
  });
}

/**
 * A configuration of `count` H100s in confidential-computing mode, each with its own uuid,
 * serial and PCI address; ECC and persistence on, MIG on every other GPU.
 */
export function fakeNvmlConfig(count: number): string {
  const lines = ['driver_version=550.90.07', 'nvml_version=12.550.90.07', 'cuda_driver_version=12040', `gpu_count=${count}`];
  for (let i = 0; i < count; i++) {
    const n = i.toString(16).padStart(2, '0');
    lines.push(
      `gpu.${i}.name=NVIDIA H100 80GB HBM3`,
      `gpu.${i}.uuid=GPU-${n}${n}${n}${n}-1111-2222-3333-4444444444${n}`,
      `gpu.${i}.serial=16509230000${n}`,
      `gpu.${i}.pci_bus_id=00000000:${(0x18 + 0x11 * i).toString(16).toUpperCase().padStart(2, '0')}:00.0`,
      `gpu.${i}.vbios_version=96.00.9F.00.01`,
      `gpu.${i}.inforom_version=G520.0200.00.05`,
      `gpu.${i}.ecc_mode=1`,
      `gpu.${i}.mig_mode=${i % 2}`,
      `gpu.${i}.persistence_mode=1`,
    );
  }
  lines.push('cc.supported=1', 'cc.environment=2', 'cc.feature=1', 'cc.devtools=0', 'cc.gpus_ready=1');
  return `${lines.join('\n')}\n`;
}

/** Writes the configuration for `count` GPUs to DIR/nvml-COUNT.conf and returns its path. */
export async function writeFakeNvmlConfig(dir: string, count: number): Promise<string> {
  const path = join(dir, `nvml-${count}.conf`);
  await writeFile(path, fakeNvmlConfig(count));
  return path;
}
