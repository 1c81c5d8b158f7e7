/**
 * The GPU evidence source: one call per epoch gathers the GPU measurement and its digest.
 *
 * NVML is the primary source. A host without it (library missing, or nvmlInit_v2 refusing:
 * no driver, no GPU) is not an error: the measurement says so, with source 'none' and the
 * reason, or with source 'nvidia-smi' when that program still answers. When both answer, they
 * are cross-checked and the differing fields reported. A failing NVML call on a working
 * driver is an error (NVML_CALL_FAILED): the epoch fails closed rather than measure half a
 * GPU. Module and firmware digests and /proc/driver/nvidia/version are added whatever the
 * source. Never used on the lease path.
 */
import { createHash } from 'node:crypto';
import { AttestdError, asAttestdError } from '../../base/errors.js';
import { crossCheckGpuMeasurements } from '../../verify/gpu/cross-check.js';
import {
  canonicalGpuMeasurement, encodeGpuMeasurement, type GpuMeasurement, noGpuMeasurement,
} from '../../verify/gpu/measurement.js';
import { driverVersionFromProcText } from '../../verify/gpu/proc-driver-version.js';
import {
  collectFirmwareDigests, collectModuleDigests, type DriverDigestOptions, isDriverVersion, readProcDriverVersion,
} from './driver-digests.js';
import { collectNvidiaSmi, type NvidiaSmiOptions } from './nvidia-smi.js';
import { DEFAULT_NVML_LIBRARY, Nvml } from './nvml.js';
import { type GpuAttestation, type NvmlState, readNvmlAttestation, readNvmlState } from './nvml-state.js';

export interface GpuCollectorOptions {
  /** Default 'libnvidia-ml.so.1', found by the dynamic loader. */
  nvmlLibraryPath?: string;
  /** Deadline for one NVML session; default 30 s. */
  nvmlTimeoutMs?: number;
  /** How to run nvidia-smi, or false to never run it. */
  nvidiaSmi?: NvidiaSmiOptions | false;
  /** Run nvidia-smi beside a working NVML to cross-check it; default true. */
  crossCheck?: boolean;
  /** Where the kernel module, firmware and /proc files are read from (root, kernel release). */
  driver?: DriverDigestOptions;
}

export type CrossCheck =
  | { performed: true; mismatches: string[] }
  | { performed: false; reason: string };

export interface GpuEvidence {
  measurement: GpuMeasurement;
  /** The canonical encoding of `measurement` (verify/gpu/measurement.ts). */
  encoded: Buffer;
  /** SHA-256 of `encoded`: the GPU digest of the epoch binding. */
  sha256: Buffer;
  crossCheck: CrossCheck;
  /** Attestation reports, when a nonce was given and CC is on; not part of the measurement. */
  attestation: GpuAttestation[];
}

export interface GpuCollectRequest {
  /**
   * Ask each CC-capable GPU for an attestation report over the 32 bytes this gives for its
   * UUID (verify/gpu-report/nonce.ts), or over these 32 bytes for every GPU.
   */
  attestationNonce?: Uint8Array | ((uuid: string) => Uint8Array);
}

/** The nonce for each GPU, checked to be 32 bytes whichever way it was given. */
function nonceFunction(nonce: Uint8Array | ((uuid: string) => Uint8Array)): (uuid: string) => Uint8Array {
  return (uuid) => {
    const n = typeof nonce === 'function' ? nonce(uuid) : nonce;
    if (!(n instanceof Uint8Array) || n.length !== 32) throw new AttestdError('INVALID_ARGUMENT', 'attestationNonce must be 32 bytes');
    return n;
  };
}

function fromNvml(state: NvmlState): GpuMeasurement {
  return { source: 'nvml', ...state, procDriverVersion: '', moduleDigests: [], firmwareDigests: [] };
}

export class GpuCollector {
  constructor(private readonly options: GpuCollectorOptions = {}) {}

  /** Collects once. Throws NVML_CALL_FAILED, NATIVE_* (hashing) or INVALID_ARGUMENT. */
  async collect(request: GpuCollectRequest = {}): Promise<GpuEvidence> {
    const o = this.options;
    const given = request.attestationNonce;
    if (given !== undefined && typeof given !== 'function' && (!(given instanceof Uint8Array) || given.length !== 32)) {
      throw new AttestdError('INVALID_ARGUMENT', 'attestationNonce must be 32 bytes');
    }
    const nonce = given === undefined ? undefined : nonceFunction(given);
    let nvml: Nvml | undefined;
    let state: NvmlState | undefined;
    let nvmlReason = '';
    try {
      nvml = Nvml.open(o.nvmlLibraryPath ?? DEFAULT_NVML_LIBRARY);
      state = await readNvmlState(nvml, o.nvmlTimeoutMs);
    } catch (err) {
      const e = asAttestdError(err);
      if (e.code !== 'NVML_UNAVAILABLE') throw e;
      nvmlReason = e.message;
    }

    let smi: GpuMeasurement | undefined;
    let smiReason = o.nvidiaSmi === false ? 'nvidia-smi is disabled' : 'cross-check is disabled';
    if (o.nvidiaSmi !== false && (state === undefined || o.crossCheck !== false)) {
      try {
        smi = await collectNvidiaSmi(o.nvidiaSmi ?? {}, nvmlReason || undefined);
      } catch (err) {
        smiReason = asAttestdError(err).message;
      }
    }

    let base: GpuMeasurement;
    let crossCheck: CrossCheck;
    if (state !== undefined) {
      base = fromNvml(state);
      crossCheck = smi !== undefined
        ? { performed: true, mismatches: crossCheckGpuMeasurements(base, smi) }
        : { performed: false, reason: smiReason };
    } else {
      base = smi ?? noGpuMeasurement(nvmlReason);
      crossCheck = { performed: false, reason: `NVML is unavailable: ${nvmlReason}` };
    }

    const procDriverVersion = await readProcDriverVersion(o.driver);
    const version = base.driverVersion || driverVersionFromProcText(procDriverVersion) || '';
    const measurement = canonicalGpuMeasurement({
      ...base,
      procDriverVersion,
      moduleDigests: await collectModuleDigests(o.driver),
      firmwareDigests: isDriverVersion(version) ? await collectFirmwareDigests(version, o.driver) : [],
    });
    const encoded = encodeGpuMeasurement(measurement);

    const attestation = nonce !== undefined && nvml !== undefined && state?.ccState.ccFeature === 'enabled'
      ? await readNvmlAttestation(nvml, nonce, o.nvmlTimeoutMs)
      : [];
    return { measurement, encoded, sha256: createHash('sha256').update(encoded).digest(), crossCheck, attestation };
  }
}
