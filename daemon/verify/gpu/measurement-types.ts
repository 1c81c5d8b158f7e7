/**
 * The shape of a GPU measurement (see measurement.ts for its canonical encoding): what the
 * collectors fill in, the checks validate and the encoder writes.
 */
/** Where the GPU facts came from: NVML, the nvidia-smi fallback, or nowhere (no driver). */
export type GpuSource = 'nvml' | 'nvidia-smi' | 'none';

/** A value NVML or nvidia-smi reports but this version does not know, kept as its number. */
export type UnknownValue = `unknown(${number})`;

/** An NVML enable state; 'n/a' when the GPU or source does not report it. */
export type Toggle = 'enabled' | 'disabled' | 'n/a' | UnknownValue;

/**
 * Confidential-computing mode as it applies to one GPU. NVML exposes CC state per system, not
 * per GPU, so every GPU of a system carries the same value: 'on' when the CC feature is
 * enabled, 'devtools' when it is enabled in developer-tools mode (not confidential), 'off'
 * when disabled, 'n/a' when the driver has no CC support or the source cannot tell.
 */
export type CcMode = 'on' | 'off' | 'devtools' | 'n/a';

export interface GpuDevice {
  /** NVML enumeration index (0-based); the position in the XML for nvidia-smi. */
  index: number;
  /** Product name, e.g. "NVIDIA H100 80GB HBM3". */
  name: string;
  /** "GPU-" followed by the GPU's UUID; the key for matching GPUs across sources. */
  uuid: string;
  /** Board serial number; '' when the board has none (consumer GPUs). */
  serial: string;
  /** PCI address "DDDDDDDD:BB:DD.F" as the source printed it. */
  pciBusId: string;
  /** VBIOS version, e.g. "96.00.74.00.01". */
  vbiosVersion: string;
  /** InfoROM image version; '' when not reported. */
  inforomImageVersion: string;
  /** ECC mode currently in effect (not the pending one). */
  eccModeCurrent: Toggle;
  /** MIG mode currently in effect; 'n/a' on GPUs without MIG. */
  migModeCurrent: Toggle;
  /** Whether the driver stays loaded with no client (persistence mode). */
  persistenceMode: Toggle;
  /** See CcMode. */
  ccMode: CcMode;
}

/** System-wide confidential-computing state (nvmlSystemGetConfComputeState and friends). */
export interface CcState {
  /** Platform CC environment: 'unavailable', 'sim' (simulated), 'prod', or 'n/a'. */
  environment: 'unavailable' | 'sim' | 'prod' | 'n/a' | UnknownValue;
  /** Whether the CC feature is on for the system's GPUs. */
  ccFeature: Toggle;
  /** Developer-tools mode: 'on' means CC protections are relaxed for debugging. */
  devToolsMode: 'on' | 'off' | 'n/a' | UnknownValue;
  /** nvmlSystemGetConfComputeGpusReadyState: whether GPUs accept work in CC mode. */
  gpusReady: 'ready' | 'not-ready' | 'n/a' | UnknownValue;
}

/** A file's SHA-256; the path is as seen inside the collection root ("/lib/firmware/..."). */
export interface FileDigest {
  path: string;
  /** 64 lowercase hex digits. */
  sha256: string;
}

/** A loaded kernel module; path and sha256 are both '' when its file could not be found. */
export interface ModuleDigest {
  /** Module name as /proc/modules lists it, e.g. "nvidia_uvm". */
  name: string;
  path: string;
  sha256: string;
}

export interface GpuMeasurement {
  source: GpuSource;
  /** Why NVML was not used; present exactly when source is not 'nvml'. */
  noDriverReason?: string;
  /** Driver version, e.g. "550.90.07"; '' when no source reported one. */
  driverVersion: string;
  /** NVML library version, e.g. "12.550.90.07"; '' unless the source is NVML. */
  nvmlVersion: string;
  /** CUDA version the driver supports, "major.minor", e.g. "12.4"; '' when unknown. */
  cudaDriverVersion: string;
  /** Text of /proc/driver/nvidia/version (trailing whitespace trimmed); '' when absent. */
  procDriverVersion: string;
  gpus: GpuDevice[];
  ccState: CcState;
  /** Loaded nvidia* kernel modules and the digests of their files. */
  moduleDigests: ModuleDigest[];
  /** GSP firmware files of the running driver version. */
  firmwareDigests: FileDigest[];
}
