/**
 * The fake NVML (test/fake-nvml/fake_nvml.c) for tests: built with `cc` once per source
 * version into a folder under the temp dir (test workers share it), and configured through a
 * key=value file named by FAKE_NVML_CONFIG, which the fake re-reads on every nvmlInit_v2.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'fake-nvml');

export interface FakeGpu {
  name: string;
  uuid: string;
  serial: string;
  pciBusId: string;
  vbiosVersion: string;
  inforomVersion: string;
  /** Raw NVML values; -1 makes the call return NVML_ERROR_NOT_SUPPORTED. */
  eccMode: number;
  migMode: number;
  persistenceMode: number;
  /** Makes the GPU answer with SPDM reports signed at call time (see fake_nvml.c). */
  attestation?: FakeGpuAttestation;
}

export interface FakeGpuAttestation {
  /** PEM private key (ECDSA P-384) the report is signed with. */
  keyPath: string;
  /** PEM chain, leaf first, returned as the attestation certificate chain. */
  chainPath: string;
  /** One 48-byte digest per measurement block, blocks 1.. */
  measurements: Buffer[];
  /** The VBIOS the report states; default the GPU's vbiosVersion. */
  reportVbios?: string;
  /** Zero bytes after the signature. */
  trailing?: number;
}

export interface FakeNvmlConfig {
  driverVersion: string;
  nvmlVersion: string;
  cudaDriverVersion: number;
  gpus: FakeGpu[];
  /** Omit for a driver without confidential-computing support. */
  cc?: { environment: number; feature: number; devtools: number; gpusReady: number };
  /** Every NVML call sleeps this long first. */
  delayMs?: number;
  /** NVML function name → return code it gives from now on. */
  fail?: Record<string, number>;
}

let built: string | undefined;

/** Builds the fake once; returns the path of libnvidia-ml.so.1. */
export function fakeNvmlLibrary(): string {
  if (built !== undefined) return built;
  const hash = createHash('sha256')
    .update(readFileSync(join(SOURCE_DIR, 'fake_nvml.c')))
    .update(readFileSync(join(SOURCE_DIR, 'build.sh')))
    .digest('hex').slice(0, 16);
  const dir = join(tmpdir(), `attestd-fake-nvml-${hash}`);
  const lib = join(dir, 'libnvidia-ml.so.1');
  if (!existsSync(lib)) execFileSync('bash', [join(SOURCE_DIR, 'build.sh'), dir], { stdio: 'pipe' });
  built = lib;
  return lib;
}

export function twoGpuConfig(): FakeNvmlConfig {
  return {
    driverVersion: '550.90.07',
    nvmlVersion: '12.550.90.07',
    cudaDriverVersion: 12040,
    gpus: [
      {
        name: 'NVIDIA H100 80GB HBM3', uuid: 'GPU-11111111-2222-3333-4444-555555555555', serial: '1650923000001',
        pciBusId: '00000000:18:00.0', vbiosVersion: '96.00.9F.00.01', inforomVersion: 'G520.0200.00.05',
        eccMode: 1, migMode: 0, persistenceMode: 1,
      },
      {
        name: 'NVIDIA H100 80GB HBM3', uuid: 'GPU-66666666-7777-8888-9999-aaaaaaaaaaaa', serial: '1650923000002',
        pciBusId: '00000000:2A:00.0', vbiosVersion: '96.00.9F.00.01', inforomVersion: 'G520.0200.00.05',
        eccMode: 1, migMode: 1, persistenceMode: 1,
      },
    ],
    cc: { environment: 2, feature: 1, devtools: 0, gpusReady: 1 },
  };
}

export function renderFakeNvmlConfig(c: FakeNvmlConfig): string {
  const lines = [
    `driver_version=${c.driverVersion}`,
    `nvml_version=${c.nvmlVersion}`,
    `cuda_driver_version=${c.cudaDriverVersion}`,
    `gpu_count=${c.gpus.length}`,
  ];
  c.gpus.forEach((g, i) => {
    lines.push(`gpu.${i}.name=${g.name}`, `gpu.${i}.uuid=${g.uuid}`, `gpu.${i}.serial=${g.serial}`,
      `gpu.${i}.pci_bus_id=${g.pciBusId}`, `gpu.${i}.vbios_version=${g.vbiosVersion}`,
      `gpu.${i}.inforom_version=${g.inforomVersion}`, `gpu.${i}.ecc_mode=${g.eccMode}`,
      `gpu.${i}.mig_mode=${g.migMode}`, `gpu.${i}.persistence_mode=${g.persistenceMode}`);
    const a = g.attestation;
    if (a) {
      lines.push(`gpu.${i}.attestation_key=${a.keyPath}`, `gpu.${i}.attestation_chain=${a.chainPath}`,
        `gpu.${i}.measurements=${a.measurements.map((m) => m.toString('hex')).join(',')}`);
      if (a.reportVbios !== undefined) lines.push(`gpu.${i}.report_vbios=${a.reportVbios}`);
      if (a.trailing !== undefined) lines.push(`gpu.${i}.report_trailing=${a.trailing}`);
    }
  });
  if (c.cc) {
    lines.push('cc.supported=1', `cc.environment=${c.cc.environment}`, `cc.feature=${c.cc.feature}`,
      `cc.devtools=${c.cc.devtools}`, `cc.gpus_ready=${c.cc.gpusReady}`);
  }
  if (c.delayMs !== undefined) lines.push(`delay_ms=${c.delayMs}`);
  for (const [fn, rc] of Object.entries(c.fail ?? {})) lines.push(`fail.${fn}=${rc}`);
  return `${lines.join('\n')}\n`;
}

/** Writes the config to `path` and points FAKE_NVML_CONFIG at it (the fake reads it at init). */
export function writeFakeNvmlConfig(path: string, c: FakeNvmlConfig | string): void {
  writeFileSync(path, typeof c === 'string' ? c : renderFakeNvmlConfig(c));
  process.env.FAKE_NVML_CONFIG = path;
}
