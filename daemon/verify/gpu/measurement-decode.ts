/**
 * Decodes a GPU measurement from its canonical encoding (format in measurement.ts), as the
 * offline verifier reads it back from the audit log.
 *
 * The bytes are attacker-controlled: the total size is checked first, every length and count
 * against the bytes that remain and against LIMITS before anything is sliced, strings must be
 * valid UTF-8, and the result must pass the same canonical-form rules as the encoder's input.
 * Any failure throws AttestdError('INVALID_ARGUMENT'). A successful decode therefore re-encodes
 * to exactly the input.
 */
import { AttestdError } from '../../base/errors.js';
import { LIMITS, validateMeasurement } from './measurement-check.js';
import {
  type CcState, type FileDigest, type GpuDevice, type GpuMeasurement, type GpuSource, MEASUREMENT_MAGIC,
  type ModuleDigest, type Toggle,
} from './measurement.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** The smallest encoded GPU: an index and ten empty strings. */
const MIN_GPU_BYTES = 4 + 10 * 4;
const MIN_MODULE_BYTES = 3 * 4;
const MIN_FILE_BYTES = 2 * 4;

function malformed(message: string): never {
  throw new AttestdError('INVALID_ARGUMENT', `GPU measurement encoding: ${message}`);
}

class Reader {
  private pos = 0;

  constructor(private readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, what: string): void {
    if (n > this.remaining) malformed(`${what} runs past the end at offset ${this.pos}`);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++] as number;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  count(what: string, max: number, minItemBytes: number): number {
    const n = this.u32(what);
    if (n > max) malformed(`${what} ${n} exceeds ${max}`);
    if (n * minItemBytes > this.remaining) malformed(`${what} ${n} cannot fit in ${this.remaining} bytes`);
    return n;
  }

  str(what: string): string {
    const len = this.u32(`${what} length`);
    if (len > LIMITS.stringBytes) malformed(`${what} length ${len} exceeds ${LIMITS.stringBytes}`);
    this.need(len, what);
    const bytes = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    try {
      return utf8.decode(bytes);
    } catch {
      return malformed(`${what} is not valid UTF-8`);
    }
  }

  magic(): void {
    this.need(MEASUREMENT_MAGIC.length, 'magic');
    if (!this.buf.subarray(0, MEASUREMENT_MAGIC.length).equals(MEASUREMENT_MAGIC)) malformed('bad magic');
    this.pos += MEASUREMENT_MAGIC.length;
  }
}

function readGpu(r: Reader): GpuDevice {
  const index = r.u32('gpu index');
  const [name, uuid, serial, pciBusId, vbiosVersion, inforomImageVersion, ecc, mig, persistence, cc] =
    Array.from({ length: 10 }, (_, i) => r.str(`gpu ${index} field ${i}`)) as [
      string, string, string, string, string, string, string, string, string, string];
  // The enum fields are checked by validateMeasurement below.
  return {
    index, name, uuid, serial, pciBusId, vbiosVersion, inforomImageVersion,
    eccModeCurrent: ecc as Toggle, migModeCurrent: mig as Toggle, persistenceMode: persistence as Toggle,
    ccMode: cc as GpuDevice['ccMode'],
  };
}

/** Decodes and validates the canonical encoding; throws INVALID_ARGUMENT on any defect. */
export function decodeGpuMeasurement(bytes: Uint8Array): GpuMeasurement {
  if (!(bytes instanceof Uint8Array)) malformed('input must be bytes');
  if (bytes.length > LIMITS.encodedBytes) malformed(`input exceeds ${LIMITS.encodedBytes} bytes`);
  const r = new Reader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  r.magic();
  const source = r.str('source') as GpuSource;
  const flag = r.u8('noDriverReason flag');
  if (flag > 1) malformed(`noDriverReason flag ${flag} is neither 0 nor 1`);
  const noDriverReason = flag === 1 ? r.str('noDriverReason') : undefined;
  const driverVersion = r.str('driverVersion');
  const nvmlVersion = r.str('nvmlVersion');
  const cudaDriverVersion = r.str('cudaDriverVersion');
  const procDriverVersion = r.str('procDriverVersion');

  const gpus: GpuDevice[] = [];
  const gpuCount = r.count('gpu count', LIMITS.gpus, MIN_GPU_BYTES);
  for (let i = 0; i < gpuCount; i++) gpus.push(readGpu(r));

  const ccState = {
    environment: r.str('ccState.environment'),
    ccFeature: r.str('ccState.ccFeature'),
    devToolsMode: r.str('ccState.devToolsMode'),
    gpusReady: r.str('ccState.gpusReady'),
  } as CcState;

  const moduleDigests: ModuleDigest[] = [];
  const moduleCount = r.count('module count', LIMITS.digests, MIN_MODULE_BYTES);
  for (let i = 0; i < moduleCount; i++) {
    moduleDigests.push({ name: r.str('module name'), path: r.str('module path'), sha256: r.str('module sha256') });
  }
  const firmwareDigests: FileDigest[] = [];
  const fileCount = r.count('firmware count', LIMITS.digests, MIN_FILE_BYTES);
  for (let i = 0; i < fileCount; i++) {
    firmwareDigests.push({ path: r.str('firmware path'), sha256: r.str('firmware sha256') });
  }
  if (r.remaining !== 0) malformed(`${r.remaining} trailing bytes`);

  const m: GpuMeasurement = {
    source, driverVersion, nvmlVersion, cudaDriverVersion, procDriverVersion, gpus, ccState,
    moduleDigests, firmwareDigests,
  };
  if (noDriverReason !== undefined) m.noDriverReason = noDriverReason;
  try {
    validateMeasurement(m);
  } catch (err) {
    malformed((err as Error).message);
  }
  return m;
}
