/**
 * The NVML functions the binding uses, their C prototypes (required ones and those older
 * drivers lack), the session interface the collectors see, and the one way to call them: on a
 * koffi worker thread, never on the event loop.
 */
import type { LibraryHandle } from 'koffi';
import { AttestdError } from '../../base/errors.js';

export type KFn = ReturnType<LibraryHandle['func']>;
export type DeviceHandle = bigint & { readonly __nvmlDevice: unique symbol };
export type DeviceString = 'name' | 'uuid' | 'serial' | 'vbiosVersion' | 'inforomImageVersion';
export type DeviceMode = 'eccModeCurrent' | 'migModeCurrent' | 'persistenceMode';

/** One nvmlInit_v2 … nvmlShutdown span. `undefined` results mean "not supported". */
export interface NvmlSession {
  driverVersion(): Promise<string>;
  nvmlVersion(): Promise<string>;
  /** CUDA_VERSION-style integer, e.g. 12040 for 12.4. */
  cudaDriverVersion(): Promise<number | undefined>;
  deviceCount(): Promise<number>;
  device(index: number): Promise<DeviceHandle>;
  deviceString(h: DeviceHandle, field: DeviceString): Promise<string | undefined>;
  pciBusId(h: DeviceHandle): Promise<string | undefined>;
  /** The raw enable state (nvmlEnableState_t or MIG mode): 0 off, 1 on. */
  deviceMode(h: DeviceHandle, field: DeviceMode): Promise<number | undefined>;
  confComputeState(): Promise<{ environment: number; ccFeature: number; devToolsMode: number } | undefined>;
  confComputeGpusReady(): Promise<number | undefined>;
  attestationReport(h: DeviceHandle, nonce: Uint8Array): Promise<{ report: Buffer; cecReport: Buffer | null } | undefined>;
  certificate(h: DeviceHandle): Promise<{ certChain: Buffer; attestationCertChain: Buffer } | undefined>;
}

export const REQUIRED = {
  init: 'int nvmlInit_v2(void)',
  shutdown: 'int nvmlShutdown(void)',
  errorString: 'const char *nvmlErrorString(int result)',
  driverVersion: 'int nvmlSystemGetDriverVersion(void *version, uint length)',
  nvmlVersion: 'int nvmlSystemGetNVMLVersion(void *version, uint length)',
  count: 'int nvmlDeviceGetCount_v2(void *count)',
  handle: 'int nvmlDeviceGetHandleByIndex_v2(uint index, void *device)',
  name: 'int nvmlDeviceGetName(void *device, void *name, uint length)',
  uuid: 'int nvmlDeviceGetUUID(void *device, void *uuid, uint length)',
  serial: 'int nvmlDeviceGetSerial(void *device, void *serial, uint length)',
  vbiosVersion: 'int nvmlDeviceGetVbiosVersion(void *device, void *version, uint length)',
  inforomImageVersion: 'int nvmlDeviceGetInforomImageVersion(void *device, void *version, uint length)',
  pci: 'int nvmlDeviceGetPciInfo_v3(void *device, void *pci)',
  ecc: 'int nvmlDeviceGetEccMode(void *device, void *current, void *pending)',
  mig: 'int nvmlDeviceGetMigMode(void *device, void *current, void *pending)',
  persistence: 'int nvmlDeviceGetPersistenceMode(void *device, void *mode)',
} as const;

export const OPTIONAL = {
  cuda: 'int nvmlSystemGetCudaDriverVersion_v2(void *version)',
  ccState: 'int nvmlSystemGetConfComputeState(void *state)',
  ccReady: 'int nvmlSystemGetConfComputeGpusReadyState(void *isAcceptingWork)',
  report: 'int nvmlDeviceGetConfComputeGpuAttestationReport(void *device, void *report)',
  certificate: 'int nvmlDeviceGetConfComputeGpuCertificate(void *device, void *certificate)',
} as const;

export type Fns = Record<keyof typeof REQUIRED, KFn> & Partial<Record<keyof typeof OPTIONAL, KFn>>;

export function run<T>(fn: KFn, args: unknown[]): Promise<T> {
  return new Promise((resolve, reject) => {
    fn.async(...args, (err: unknown, result: T) => {
      if (err) reject(new AttestdError('INTERNAL', `koffi call ${fn.info.name} failed`, { cause: err }));
      else resolve(result);
    });
  });
}
