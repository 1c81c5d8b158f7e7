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
import { ByteReader } from '../bytes/reader.js';
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
const PREFIX = 'GPU measurement encoding: ';

function malformed(message: string): never {
  throw new AttestdError('INVALID_ARGUMENT', PREFIX + message);
}

const where = (): string => PREFIX;

/** A u32 count, bounded by `max` and by what the items it counts need at least. */
function count(r: ByteReader, what: string, max: number, minItemBytes: number): number {
  const n = r.u32(what);
  if (n > max) r.fail(`${what} ${n} exceeds ${max}`);
  if (n * minItemBytes > r.remaining) r.fail(`${what} ${n} cannot fit in ${r.remaining} bytes`);
  return n;
}

/** A u32 length, bounded by LIMITS.stringBytes, then that many bytes of UTF-8. */
function str(r: ByteReader, what: string): string {
  const len = r.u32(what);
  if (len > LIMITS.stringBytes) r.fail(`${what} length ${len} exceeds ${LIMITS.stringBytes}`);
  const bytes = r.bytes(len, what);
  try {
    return utf8.decode(bytes);
  } catch {
    return r.fail(`${what} is not valid UTF-8`);
  }
}

function readGpu(r: ByteReader): GpuDevice {
  const index = r.u32('gpu index');
  const [name, uuid, serial, pciBusId, vbiosVersion, inforomImageVersion, ecc, mig, persistence, cc] =
    Array.from({ length: 10 }, (_, i) => str(r, `gpu ${index} field ${i}`)) as [
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
  const r = new ByteReader(bytes, 'be', 'INVALID_ARGUMENT', where);
  if (!r.bytes(MEASUREMENT_MAGIC.length, 'magic').equals(MEASUREMENT_MAGIC)) r.fail('bad magic');
  const source = str(r, 'source') as GpuSource;
  const flag = r.u8('noDriverReason flag');
  if (flag > 1) r.fail(`noDriverReason flag ${flag} is neither 0 nor 1`);
  const noDriverReason = flag === 1 ? str(r, 'noDriverReason') : undefined;
  const driverVersion = str(r, 'driverVersion');
  const nvmlVersion = str(r, 'nvmlVersion');
  const cudaDriverVersion = str(r, 'cudaDriverVersion');
  const procDriverVersion = str(r, 'procDriverVersion');

  const gpus: GpuDevice[] = [];
  const gpuCount = count(r, 'gpu count', LIMITS.gpus, MIN_GPU_BYTES);
  for (let i = 0; i < gpuCount; i++) gpus.push(readGpu(r));

  const ccState = {
    environment: str(r, 'ccState.environment'),
    ccFeature: str(r, 'ccState.ccFeature'),
    devToolsMode: str(r, 'ccState.devToolsMode'),
    gpusReady: str(r, 'ccState.gpusReady'),
  } as CcState;

  const moduleDigests: ModuleDigest[] = [];
  const moduleCount = count(r, 'module count', LIMITS.digests, MIN_MODULE_BYTES);
  for (let i = 0; i < moduleCount; i++) {
    moduleDigests.push({ name: str(r, 'module name'), path: str(r, 'module path'), sha256: str(r, 'module sha256') });
  }
  const firmwareDigests: FileDigest[] = [];
  const fileCount = count(r, 'firmware count', LIMITS.digests, MIN_FILE_BYTES);
  for (let i = 0; i < fileCount; i++) {
    firmwareDigests.push({ path: str(r, 'firmware path'), sha256: str(r, 'firmware sha256') });
  }
  r.end('the encoding');

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
