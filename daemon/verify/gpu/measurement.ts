/**
 * The GPU measurement: what the host's GPUs, NVIDIA driver and its files looked like at one
 * epoch, and its canonical encoding. SHA-256 of the encoding is what the epoch binding carries
 * (ARCHITECTURE.md, trust chain step 3), so the encoding must be byte-for-byte reproducible
 * by the offline verifier from a recorded measurement.
 *
 * Canonical encoding, version 1 (all integers unsigned big-endian):
 *
 *   magic      the 26 ASCII bytes "attestd/gpu-measurement/v1"
 *   str        source
 *   u8 + str   noDriverReason: 0 = absent, 1 = present and followed by the string
 *   str x4     driverVersion, nvmlVersion, cudaDriverVersion, procDriverVersion
 *   u32        GPU count, then per GPU in ascending `index` (indices unique):
 *                u32 index, then str name, uuid, serial, pciBusId, vbiosVersion,
 *                inforomImageVersion, eccModeCurrent, migModeCurrent, persistenceMode, ccMode
 *   str x4     ccState.environment, ccFeature, devToolsMode, gpusReady
 *   u32        module count, then per module: str name, path, sha256
 *   u32        firmware count, then per file: str path, sha256
 *
 * where str = u32 byte length + UTF-8 bytes. Lists are sorted: modules by (name, path),
 * firmware by path, comparing UTF-8 bytes; duplicates are refused. encode sorts its input, so
 * the order a collector happened to see never reaches the digest; decode accepts only the
 * canonical form, so every measurement has exactly one encoding.
 */
import { createHash } from 'node:crypto';
import { AttestdError } from '../../base/errors.js';
import { compareFiles, compareModules, LIMITS, validateMeasurement } from './measurement-check.js';
import type { CcState, GpuMeasurement } from './measurement-types.js';

export type { GpuSource, UnknownValue, Toggle, CcMode, GpuDevice, CcState, FileDigest, ModuleDigest, GpuMeasurement } from './measurement-types.js';

export const MEASUREMENT_MAGIC = Buffer.from('attestd/gpu-measurement/v1', 'ascii');
export { LIMITS };

export const CC_STATE_NOT_AVAILABLE: Readonly<CcState> = Object.freeze({
  environment: 'n/a', ccFeature: 'n/a', devToolsMode: 'n/a', gpusReady: 'n/a',
});

/** The measurement of a host where no source could report anything about GPUs. */
export function noGpuMeasurement(reason: string): GpuMeasurement {
  return {
    source: 'none', noDriverReason: reason, driverVersion: '', nvmlVersion: '',
    cudaDriverVersion: '', procDriverVersion: '', gpus: [], ccState: { ...CC_STATE_NOT_AVAILABLE },
    moduleDigests: [], firmwareDigests: [],
  };
}

/** The measurement with every list in canonical order (a copy; the input is not changed). */
export function canonicalGpuMeasurement(m: GpuMeasurement): GpuMeasurement {
  // Non-arrays pass through untouched so that validation, not a TypeError, reports them.
  const sorted = <T>(list: T[], cmp: (a: T, b: T) => number): T[] =>
    Array.isArray(list) ? [...list].sort(cmp).map((x) => ({ ...x })) : list;
  const out: GpuMeasurement = {
    ...m,
    gpus: sorted(m.gpus, (a, b) => a.index - b.index),
    ccState: { ...m.ccState },
    moduleDigests: sorted(m.moduleDigests, compareModules),
    firmwareDigests: sorted(m.firmwareDigests, compareFiles),
  };
  if (out.noDriverReason === undefined) delete out.noDriverReason;
  return out;
}

class Writer {
  private readonly parts: Buffer[] = [];
  private size = 0;

  push(b: Buffer): void {
    this.size += b.length;
    if (this.size > LIMITS.encodedBytes) {
      throw new AttestdError('INVALID_ARGUMENT', `GPU measurement encodes to more than ${LIMITS.encodedBytes} bytes`);
    }
    this.parts.push(b);
  }

  u8(v: number): void {
    this.push(Buffer.from([v]));
  }

  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    this.push(b);
  }

  str(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.u32(bytes.length);
    this.push(bytes);
  }

  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/**
 * The canonical encoding (see the file comment). Throws INVALID_ARGUMENT for a measurement
 * that breaks the documented shape: an unknown enum value, a malformed digest, a string that
 * is not well-formed Unicode or exceeds the limits, duplicate GPU indices or paths.
 */
export function encodeGpuMeasurement(m: GpuMeasurement): Buffer {
  const c = canonicalGpuMeasurement(m);
  validateMeasurement(c);
  const w = new Writer();
  w.push(MEASUREMENT_MAGIC);
  w.str(c.source);
  if (c.noDriverReason === undefined) {
    w.u8(0);
  } else {
    w.u8(1);
    w.str(c.noDriverReason);
  }
  for (const s of [c.driverVersion, c.nvmlVersion, c.cudaDriverVersion, c.procDriverVersion]) w.str(s);
  w.u32(c.gpus.length);
  for (const g of c.gpus) {
    w.u32(g.index);
    for (const s of [g.name, g.uuid, g.serial, g.pciBusId, g.vbiosVersion, g.inforomImageVersion,
      g.eccModeCurrent, g.migModeCurrent, g.persistenceMode, g.ccMode]) w.str(s);
  }
  const cc = c.ccState;
  for (const s of [cc.environment, cc.ccFeature, cc.devToolsMode, cc.gpusReady]) w.str(s);
  w.u32(c.moduleDigests.length);
  for (const d of c.moduleDigests) {
    w.str(d.name);
    w.str(d.path);
    w.str(d.sha256);
  }
  w.u32(c.firmwareDigests.length);
  for (const d of c.firmwareDigests) {
    w.str(d.path);
    w.str(d.sha256);
  }
  return w.done();
}

/** SHA-256 of the canonical encoding: the value the epoch binding carries. */
export function gpuMeasurementSha256(m: GpuMeasurement): Buffer {
  return createHash('sha256').update(encodeGpuMeasurement(m)).digest();
}
