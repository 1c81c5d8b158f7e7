/**
 * One nvmlInit_v2 … nvmlShutdown span as the collectors see it (NvmlSession): typed calls over
 * native memory that lives as long as the session. Every buffer NVML fills comes from
 * koffi.alloc (a stable native address), is zeroed first, and is freed by the caller that owns
 * the session when it ends; every length NVML reports is checked before anything is copied.
 */
import koffi, { type TypeObject } from 'koffi';
import { AttestdError } from '../../base/errors.js';
import { NVML_ERROR_NOT_SUPPORTED, NVML_SUCCESS } from './nvml-return.js';
import { run, type DeviceHandle, type Fns, type KFn, type NvmlSession } from './nvml-functions.js';

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

/** The primitives a session's calls share: session-owned memory and one way to call NVML. */
class SessionCalls {
  private readonly deviceIndex = new Map<DeviceHandle, number>();

  constructor(readonly fns: Fns, private readonly blocks: bigint[], private readonly describe: (rc: number) => Promise<string>) {}

  alloc(size: number): bigint {
    const p = koffi.alloc('uint8_t', size) as bigint;
    this.blocks.push(p);
    new Uint8Array(koffi.view(p, size)).fill(0);
    return p;
  }

  u32(p: bigint): number {
    return (koffi.decode(p, 'uint32_t') as number) >>> 0;
  }

  cString(p: bigint, size: number): string {
    const bytes = Buffer.from(koffi.view(p, size));
    const end = bytes.indexOf(0);
    return bytes.subarray(0, end < 0 ? size : end).toString('utf8');
  }

  /** NVML_SUCCESS → true; NOT_SUPPORTED or a missing function → false; else NVML_CALL_FAILED. */
  async call(fn: KFn | undefined, what: string, args: unknown[], strict = false): Promise<boolean> {
    if (fn === undefined) return false;
    const rc = await run<number>(fn, args);
    if (rc === NVML_SUCCESS) return true;
    if (rc === NVML_ERROR_NOT_SUPPORTED && !strict) return false;
    throw new AttestdError('NVML_CALL_FAILED', `${fn.info.name}(${what}) failed: ${await this.describe(rc)}`);
  }

  async systemString(fn: KFn): Promise<string> {
    const p = this.alloc(STRING_BYTES);
    await this.call(fn, 'system', [p, STRING_BYTES], true);
    return this.cString(p, STRING_BYTES);
  }

  async optionalU32(fn: KFn | undefined, what: string, args: (p: bigint) => unknown[]): Promise<number | undefined> {
    const p = this.alloc(8);
    return (await this.call(fn, what, args(p))) ? this.u32(p) : undefined;
  }

  remember(h: DeviceHandle, index: number): void {
    this.deviceIndex.set(h, index);
  }

  label(h: DeviceHandle): string {
    return `gpu ${this.deviceIndex.get(h) ?? '?'}`;
  }
}

/** A session over `fns`; the memory it allocates is pushed on `blocks` for the owner to free. */
export function makeSession(fns: Fns, blocks: bigint[], describe: (rc: number) => Promise<string>): NvmlSession {
  const c = new SessionCalls(fns, blocks, describe);
  return { ...systemCalls(c), ...deviceCalls(c), ...confidentialComputingCalls(c) };
}

function systemCalls(c: SessionCalls): Pick<NvmlSession, 'driverVersion' | 'nvmlVersion' | 'cudaDriverVersion' | 'deviceCount'> {
  const { fns } = c;
  return {
    driverVersion: () => c.systemString(fns.driverVersion),
    nvmlVersion: () => c.systemString(fns.nvmlVersion),
    cudaDriverVersion: () => c.optionalU32(fns.cuda, 'system', (p) => [p]),
    deviceCount: async () => {
      const p = c.alloc(8);
      await c.call(fns.count, 'system', [p], true);
      return c.u32(p);
    },
  };
}

function deviceCalls(c: SessionCalls): Pick<NvmlSession, 'device' | 'deviceString' | 'pciBusId' | 'deviceMode'> {
  const { fns } = c;
  return {
    device: async (index) => {
      const p = c.alloc(8);
      await c.call(fns.handle, `index ${index}`, [index, p], true);
      const h: unknown = koffi.decode(p, 'void *');
      if (typeof h !== 'bigint' || h === 0n) {
        throw new AttestdError('NVML_CALL_FAILED', `nvmlDeviceGetHandleByIndex_v2(index ${index}) returned no handle`);
      }
      c.remember(h as DeviceHandle, index);
      return h as DeviceHandle;
    },
    deviceString: async (h, field) => {
      const p = c.alloc(STRING_BYTES);
      const strict = field === 'name' || field === 'uuid';
      return (await c.call(fns[field], c.label(h), [h, p, STRING_BYTES], strict)) ? c.cString(p, STRING_BYTES) : undefined;
    },
    pciBusId: async (h) => {
      const p = c.alloc(koffi.sizeof(PCI_INFO));
      if (!(await c.call(fns.pci, c.label(h), [h, p]))) return undefined;
      return c.cString(p + BigInt(koffi.offsetof(PCI_INFO, 'busId')), 32);
    },
    deviceMode: (h, field) => {
      const fn = field === 'eccModeCurrent' ? fns.ecc : field === 'migModeCurrent' ? fns.mig : fns.persistence;
      // The pending mode, where there is one, goes to the second half of the block.
      return c.optionalU32(fn, c.label(h), (p) => (field === 'persistenceMode' ? [h, p] : [h, p, p + 4n]));
    },
  };
}

function confidentialComputingCalls(c: SessionCalls):
  Pick<NvmlSession, 'confComputeState' | 'confComputeGpusReady' | 'attestationReport' | 'certificate'> {
  const { fns } = c;
  return {
    confComputeState: async () => {
      const p = c.alloc(koffi.sizeof(CC_SYSTEM_STATE));
      if (!(await c.call(fns.ccState, 'system', [p]))) return undefined;
      return koffi.decode(p, CC_SYSTEM_STATE) as { environment: number; ccFeature: number; devToolsMode: number };
    },
    confComputeGpusReady: () => c.optionalU32(fns.ccReady, 'system', (p) => [p]),
    attestationReport: async (h, nonce) => {
      if (!(nonce instanceof Uint8Array) || nonce.length !== CC_NONCE_BYTES) {
        throw new AttestdError('INVALID_ARGUMENT', `nonce must be ${CC_NONCE_BYTES} bytes`);
      }
      const size = koffi.sizeof(CC_ATTESTATION_REPORT);
      const p = c.alloc(size);
      const view = new Uint8Array(koffi.view(p, size));
      view.set(nonce, koffi.offsetof(CC_ATTESTATION_REPORT, 'nonce'));
      if (!(await c.call(fns.report, c.label(h), [h, p]))) return undefined;
      const field = sizedField(p, view, CC_ATTESTATION_REPORT, c.label(h));
      return {
        report: field('attestationReport', 'attestationReportSize', 0x2000),
        cecReport: c.u32(p + BigInt(koffi.offsetof(CC_ATTESTATION_REPORT, 'isCecAttestationReportPresent'))) === 1
          ? field('cecAttestationReport', 'cecAttestationReportSize', 0x1000) : null,
      };
    },
    certificate: async (h) => {
      const size = koffi.sizeof(CC_GPU_CERTIFICATE);
      const p = c.alloc(size);
      if (!(await c.call(fns.certificate, c.label(h), [h, p]))) return undefined;
      const field = sizedField(p, new Uint8Array(koffi.view(p, size)), CC_GPU_CERTIFICATE, c.label(h));
      return {
        certChain: field('certChain', 'certChainSize', 0x1000),
        attestationCertChain: field('attestationCertChain', 'attestationCertChainSize', 0x1400),
      };
    },
  };
}
