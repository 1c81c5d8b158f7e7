/**
 * The NVML binding: the only place that loads libnvidia-ml.so.1 through koffi.
 *
 * Every NVML call runs on a koffi worker thread (`.async`), never on the event loop, and all
 * calls on one library go through one queue, one session (nvmlInit_v2 … nvmlShutdown) at a
 * time. Memory handed to NVML comes from koffi.alloc (stable native addresses) and is freed
 * when the session ends. A session has a deadline: a driver that hangs makes the session fail
 * with NVML_CALL_FAILED, and later sessions queue behind the stuck call and fail the same way,
 * which is the fail-closed outcome. Never used on the lease path.
 *
 * Functions that older drivers lack (CUDA version, confidential computing, attestation) are
 * bound lazily; a missing one reads as "not supported", like NVML_ERROR_NOT_SUPPORTED.
 */
import { basename } from 'node:path';
import koffi, { type LibraryHandle, type TypeObject } from 'koffi';
import { AttestdError } from '../../base/errors.js';
import { SerialQueue } from '../../base/serial-queue.js';
import { NVML_ERROR_NOT_SUPPORTED, NVML_SUCCESS, nvmlReturnName } from './nvml-return.js';

export const DEFAULT_NVML_LIBRARY = 'libnvidia-ml.so.1';
export const DEFAULT_NVML_TIMEOUT_MS = 30_000;
/** Larger than every NVML string buffer size in nvml.h (the largest is 96 bytes). */
const STRING_BYTES = 256;
export const CC_NONCE_BYTES = 0x20;

const PCI_INFO = koffi.struct({
  busIdLegacy: 'char[16]', domain: 'uint', bus: 'uint', device: 'uint', pciDeviceId: 'uint',
  pciSubSystemId: 'uint', busId: 'char[32]',
});
const CC_SYSTEM_STATE = koffi.struct({ environment: 'uint', ccFeature: 'uint', devToolsMode: 'uint' });
const CC_ATTESTATION_REPORT = koffi.struct({
  isCecAttestationReportPresent: 'uint', attestationReportSize: 'uint', cecAttestationReportSize: 'uint',
  nonce: koffi.array('uint8_t', CC_NONCE_BYTES), attestationReport: koffi.array('uint8_t', 0x2000),
  cecAttestationReport: koffi.array('uint8_t', 0x1000),
});
const CC_GPU_CERTIFICATE = koffi.struct({
  certChainSize: 'uint', attestationCertChainSize: 'uint',
  certChain: koffi.array('uint8_t', 0x1000), attestationCertChain: koffi.array('uint8_t', 0x1400),
});

type KFn = ReturnType<LibraryHandle['func']>;
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

const REQUIRED = {
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

const OPTIONAL = {
  cuda: 'int nvmlSystemGetCudaDriverVersion_v2(void *version)',
  ccState: 'int nvmlSystemGetConfComputeState(void *state)',
  ccReady: 'int nvmlSystemGetConfComputeGpusReadyState(void *isAcceptingWork)',
  report: 'int nvmlDeviceGetConfComputeGpuAttestationReport(void *device, void *report)',
  certificate: 'int nvmlDeviceGetConfComputeGpuCertificate(void *device, void *certificate)',
} as const;

type Fns = Record<keyof typeof REQUIRED, KFn> & Partial<Record<keyof typeof OPTIONAL, KFn>>;

function run<T>(fn: KFn, args: unknown[]): Promise<T> {
  return new Promise((resolve, reject) => {
    fn.async(...args, (err: unknown, result: T) => {
      if (err) reject(new AttestdError('INTERNAL', `koffi call ${fn.info.name} failed`, { cause: err }));
      else resolve(result);
    });
  });
}

/**
 * Reads a byte array whose used length is in a sibling field. The length comes from the
 * driver; it is checked against the array's size before anything is copied.
 */
function sizedField(p: bigint, view: Uint8Array, type: TypeObject, device: string) {
  return (field: string, sizeField: string, max: number): Buffer => {
    const length = (koffi.decode(p + BigInt(koffi.offsetof(type, sizeField)), 'uint32_t') as number) >>> 0;
    if (length > max) throw new AttestdError('NVML_CALL_FAILED', `${field} size ${length} of ${device} exceeds ${max}`);
    const at = koffi.offsetof(type, field);
    return Buffer.from(view.subarray(at, at + length));
  };
}

function loadLibrary(path: string): { lib: LibraryHandle; fns: Fns } {
  const name = basename(path);
  let lib: LibraryHandle;
  try {
    lib = koffi.load(path);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const missing = /No such file|cannot open shared object/.test(msg);
    throw new AttestdError('NVML_UNAVAILABLE', missing ? `${name} not found` : `${name} could not be loaded: ${msg}`,
      { cause: err });
  }
  const fns: Partial<Fns> = {};
  for (const [key, proto] of Object.entries(REQUIRED)) {
    try {
      fns[key as keyof typeof REQUIRED] = lib.func(proto);
    } catch (err) {
      lib.unload();
      throw new AttestdError('NVML_UNAVAILABLE', `${name} lacks ${proto}`, { cause: err });
    }
  }
  for (const [key, proto] of Object.entries(OPTIONAL)) {
    try {
      fns[key as keyof typeof OPTIONAL] = lib.func(proto);
    } catch {
      // An older driver: the feature reads as not supported.
    }
  }
  return { lib, fns: fns as Fns };
}

const opened = new Map<string, Nvml>();

export class Nvml {
  private readonly queue = new SerialQueue();

  private constructor(readonly libraryPath: string, private readonly fns: Fns) {}

  /**
   * Loads the library once per path. Throws NVML_UNAVAILABLE with the message
   * "<file name> not found" when it does not exist, or naming what else went wrong.
   */
  static open(libraryPath: string = DEFAULT_NVML_LIBRARY): Nvml {
    if (typeof libraryPath !== 'string' || libraryPath === '' || libraryPath.includes('\0')) {
      throw new AttestdError('INVALID_ARGUMENT', 'libraryPath must be a non-empty string without NUL');
    }
    let nvml = opened.get(libraryPath);
    if (nvml === undefined) {
      nvml = new Nvml(libraryPath, loadLibrary(libraryPath).fns);
      opened.set(libraryPath, nvml);
    }
    return nvml;
  }

  /**
   * Runs `body` inside nvmlInit_v2 … nvmlShutdown, after every earlier session. Throws
   * NVML_UNAVAILABLE when nvmlInit_v2 fails (no driver, no GPU, no permission), and
   * NVML_CALL_FAILED when a call fails or the session outlives `timeoutMs`.
   */
  session<T>(body: (s: NvmlSession) => Promise<T>, timeoutMs = DEFAULT_NVML_TIMEOUT_MS): Promise<T> {
    const work = this.queue.run(() => this.runSession(body));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AttestdError('NVML_CALL_FAILED',
        `NVML did not answer within ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
    });
    return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
  }

  private async runSession<T>(body: (s: NvmlSession) => Promise<T>): Promise<T> {
    const rc = await run<number>(this.fns.init, []);
    if (rc !== NVML_SUCCESS) {
      throw new AttestdError('NVML_UNAVAILABLE', `nvmlInit_v2 failed: ${await this.describe(rc)}`);
    }
    const blocks: bigint[] = [];
    try {
      return await body(this.makeSession(blocks));
    } finally {
      for (const p of blocks.splice(0)) koffi.free(p);
      await run<number>(this.fns.shutdown, []);
    }
  }

  private async describe(rc: number): Promise<string> {
    const text = await run<unknown>(this.fns.errorString, [rc]).catch(() => undefined);
    return `${nvmlReturnName(rc)} (${rc})${typeof text === 'string' && text !== '' ? `: ${text.slice(0, 200)}` : ''}`;
  }

  private makeSession(blocks: bigint[]): NvmlSession {
    const fns = this.fns;
    const alloc = (size: number): bigint => {
      const p = koffi.alloc('uint8_t', size) as bigint;
      blocks.push(p);
      new Uint8Array(koffi.view(p, size)).fill(0);
      return p;
    };
    const u32 = (p: bigint): number => (koffi.decode(p, 'uint32_t') as number) >>> 0;
    const cString = (p: bigint, size: number): string => {
      const bytes = Buffer.from(koffi.view(p, size));
      const end = bytes.indexOf(0);
      return bytes.subarray(0, end < 0 ? size : end).toString('utf8');
    };
    /** NVML_SUCCESS → true; NOT_SUPPORTED or a missing function → false; else NVML_CALL_FAILED. */
    const call = async (fn: KFn | undefined, what: string, args: unknown[], strict = false): Promise<boolean> => {
      if (fn === undefined) return false;
      const rc = await run<number>(fn, args);
      if (rc === NVML_SUCCESS) return true;
      if (rc === NVML_ERROR_NOT_SUPPORTED && !strict) return false;
      throw new AttestdError('NVML_CALL_FAILED', `${fn.info.name}(${what}) failed: ${await this.describe(rc)}`);
    };
    const systemString = async (fn: KFn): Promise<string> => {
      const p = alloc(STRING_BYTES);
      await call(fn, 'system', [p, STRING_BYTES], true);
      return cString(p, STRING_BYTES);
    };
    const optionalU32 = async (fn: KFn | undefined, what: string, args: (p: bigint) => unknown[]): Promise<number | undefined> => {
      const p = alloc(8);
      return (await call(fn, what, args(p))) ? u32(p) : undefined;
    };
    const deviceIndex = new Map<DeviceHandle, number>();
    const label = (h: DeviceHandle): string => `gpu ${deviceIndex.get(h) ?? '?'}`;

    return {
      driverVersion: () => systemString(fns.driverVersion),
      nvmlVersion: () => systemString(fns.nvmlVersion),
      cudaDriverVersion: () => optionalU32(fns.cuda, 'system', (p) => [p]),
      deviceCount: async () => {
        const p = alloc(8);
        await call(fns.count, 'system', [p], true);
        return u32(p);
      },
      device: async (index) => {
        const p = alloc(8);
        await call(fns.handle, `index ${index}`, [index, p], true);
        const h: unknown = koffi.decode(p, 'void *');
        if (typeof h !== 'bigint' || h === 0n) {
          throw new AttestdError('NVML_CALL_FAILED', `nvmlDeviceGetHandleByIndex_v2(index ${index}) returned no handle`);
        }
        deviceIndex.set(h as DeviceHandle, index);
        return h as DeviceHandle;
      },
      deviceString: async (h, field) => {
        const p = alloc(STRING_BYTES);
        const strict = field === 'name' || field === 'uuid';
        return (await call(fns[field], label(h), [h, p, STRING_BYTES], strict)) ? cString(p, STRING_BYTES) : undefined;
      },
      pciBusId: async (h) => {
        const p = alloc(koffi.sizeof(PCI_INFO));
        if (!(await call(fns.pci, label(h), [h, p]))) return undefined;
        return cString(p + BigInt(koffi.offsetof(PCI_INFO, 'busId')), 32);
      },
      deviceMode: (h, field) => {
        const fn = field === 'eccModeCurrent' ? fns.ecc : field === 'migModeCurrent' ? fns.mig : fns.persistence;
        // The pending mode, where there is one, goes to the second half of the block.
        return optionalU32(fn, label(h), (p) => (field === 'persistenceMode' ? [h, p] : [h, p, p + 4n]));
      },
      confComputeState: async () => {
        const p = alloc(koffi.sizeof(CC_SYSTEM_STATE));
        if (!(await call(fns.ccState, 'system', [p]))) return undefined;
        return koffi.decode(p, CC_SYSTEM_STATE) as { environment: number; ccFeature: number; devToolsMode: number };
      },
      confComputeGpusReady: () => optionalU32(fns.ccReady, 'system', (p) => [p]),
      attestationReport: async (h, nonce) => {
        if (!(nonce instanceof Uint8Array) || nonce.length !== CC_NONCE_BYTES) {
          throw new AttestdError('INVALID_ARGUMENT', `nonce must be ${CC_NONCE_BYTES} bytes`);
        }
        const size = koffi.sizeof(CC_ATTESTATION_REPORT);
        const p = alloc(size);
        const view = new Uint8Array(koffi.view(p, size));
        view.set(nonce, koffi.offsetof(CC_ATTESTATION_REPORT, 'nonce'));
        if (!(await call(fns.report, label(h), [h, p]))) return undefined;
        const field = sizedField(p, view, CC_ATTESTATION_REPORT, label(h));
        return {
          report: field('attestationReport', 'attestationReportSize', 0x2000),
          cecReport: u32(p + BigInt(koffi.offsetof(CC_ATTESTATION_REPORT, 'isCecAttestationReportPresent'))) === 1
            ? field('cecAttestationReport', 'cecAttestationReportSize', 0x1000) : null,
        };
      },
      certificate: async (h) => {
        const size = koffi.sizeof(CC_GPU_CERTIFICATE);
        const p = alloc(size);
        if (!(await call(fns.certificate, label(h), [h, p]))) return undefined;
        const field = sizedField(p, new Uint8Array(koffi.view(p, size)), CC_GPU_CERTIFICATE, label(h));
        return {
          certChain: field('certChain', 'certChainSize', 0x1000),
          attestationCertChain: field('attestationCertChain', 'attestationCertChainSize', 0x1400),
        };
      },
    };
  }
}
