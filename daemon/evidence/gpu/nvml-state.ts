/**
 * Reads the GPU facts of the measurement through one NVML session, and, on request, each
 * GPU's confidential-computing attestation report and certificate chain. Raw NVML values are
 * mapped to the measurement's names here (nvml.h enums: nvmlEnableState_t, the MIG mode
 * constants and the NVML_CC_SYSTEM_* constants of the conf-compute API).
 */
import { AttestdError } from '../../base/errors.js';
import type { CcMode, CcState, GpuDevice, Toggle, UnknownValue } from '../../verify/gpu/measurement.js';
import { LIMITS } from '../../verify/gpu/measurement.js';
import { type DeviceHandle, type Nvml, type NvmlSession } from './nvml.js';

export interface NvmlState {
  driverVersion: string;
  nvmlVersion: string;
  cudaDriverVersion: string;
  gpus: GpuDevice[];
  ccState: CcState;
}

/** What one GPU returned for a nonce; verifying it is the GPU report verifier's job. */
export interface GpuAttestation {
  index: number;
  uuid: string;
  nonce: Buffer;
  /** The SPDM attestation report, as long as NVML said it is. */
  report: Buffer;
  /** The CEC report, where the GPU has one. */
  cecReport: Buffer | null;
  /** The device certificate chain (certChain) and the attestation chain. */
  certChain: Buffer;
  attestationCertChain: Buffer;
}

function unknown(v: number): UnknownValue {
  return `unknown(${v})`;
}

function named<T extends string>(v: number | undefined, names: readonly T[]): T | UnknownValue | 'n/a' {
  if (v === undefined) return 'n/a';
  return names[v] ?? unknown(v);
}

const toggle = (v: number | undefined): Toggle => named(v, ['disabled', 'enabled'] as const);

/** "12.4" from 12040, as nvidia-smi prints it. */
export function formatCudaVersion(v: number | undefined): string {
  if (v === undefined) return '';
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}

/** CC state is per system in NVML; see CcMode for how it applies to each GPU. */
export function gpuCcMode(cc: CcState): CcMode {
  if (cc.ccFeature === 'disabled') return 'off';
  if (cc.ccFeature !== 'enabled') return 'n/a';
  if (cc.devToolsMode === 'off') return 'on';
  // Enabled, but with developer tools on (or in a mode this version does not know): never 'on'.
  return cc.devToolsMode === 'on' ? 'devtools' : 'n/a';
}

async function readCcState(s: NvmlSession): Promise<CcState> {
  const state = await s.confComputeState();
  const ready = await s.confComputeGpusReady();
  return {
    environment: named(state?.environment, ['unavailable', 'sim', 'prod'] as const),
    ccFeature: toggle(state?.ccFeature),
    devToolsMode: named(state?.devToolsMode, ['off', 'on'] as const),
    gpusReady: named(ready, ['not-ready', 'ready'] as const),
  };
}

async function deviceCount(s: NvmlSession): Promise<number> {
  const n = await s.deviceCount();
  if (n > LIMITS.gpus) throw new AttestdError('NVML_CALL_FAILED', `NVML reports ${n} GPUs, more than ${LIMITS.gpus}`);
  return n;
}

async function requiredString(s: NvmlSession, h: DeviceHandle, field: 'name' | 'uuid'): Promise<string> {
  // The session treats NOT_SUPPORTED as an error for these two, so undefined cannot happen.
  return (await s.deviceString(h, field)) ?? '';
}

async function readDevice(s: NvmlSession, index: number, ccMode: CcMode): Promise<GpuDevice> {
  const h = await s.device(index);
  return {
    index,
    name: await requiredString(s, h, 'name'),
    uuid: await requiredString(s, h, 'uuid'),
    serial: (await s.deviceString(h, 'serial')) ?? '',
    pciBusId: (await s.pciBusId(h)) ?? '',
    vbiosVersion: (await s.deviceString(h, 'vbiosVersion')) ?? '',
    inforomImageVersion: (await s.deviceString(h, 'inforomImageVersion')) ?? '',
    eccModeCurrent: toggle(await s.deviceMode(h, 'eccModeCurrent')),
    migModeCurrent: toggle(await s.deviceMode(h, 'migModeCurrent')),
    persistenceMode: toggle(await s.deviceMode(h, 'persistenceMode')),
    ccMode,
  };
}

/** One session: driver, NVML and CUDA versions, every GPU, and the CC state. */
export function readNvmlState(nvml: Nvml, timeoutMs?: number): Promise<NvmlState> {
  return nvml.session(async (s) => {
    const driverVersion = await s.driverVersion();
    const nvmlVersion = await s.nvmlVersion();
    const cudaDriverVersion = formatCudaVersion(await s.cudaDriverVersion());
    const ccState = await readCcState(s);
    const gpus: GpuDevice[] = [];
    const n = await deviceCount(s);
    for (let i = 0; i < n; i++) gpus.push(await readDevice(s, i, gpuCcMode(ccState)));
    return { driverVersion, nvmlVersion, cudaDriverVersion, gpus, ccState };
  }, timeoutMs);
}

/**
 * Asks every GPU that supports it for an attestation report over the nonce `nonceFor` gives
 * for its UUID (32 bytes), and for the certificate chains of that same device handle. GPUs
 * without CC support are left out of the result.
 */
export function readNvmlAttestation(nvml: Nvml, nonceFor: (uuid: string) => Uint8Array, timeoutMs?: number): Promise<GpuAttestation[]> {
  return nvml.session(async (s) => {
    const out: GpuAttestation[] = [];
    const n = await deviceCount(s);
    for (let index = 0; index < n; index++) {
      const h = await s.device(index);
      const uuid = await requiredString(s, h, 'uuid');
      const nonce = nonceFor(uuid);
      const report = await s.attestationReport(h, nonce);
      if (report === undefined) continue;
      const cert = await s.certificate(h);
      out.push({
        index, uuid, nonce: Buffer.from(nonce), ...report,
        certChain: cert?.certChain ?? Buffer.alloc(0),
        attestationCertChain: cert?.attestationCertChain ?? Buffer.alloc(0),
      });
    }
    return out;
  }, timeoutMs);
}
