/**
 * The rules a GPU measurement must follow to have a canonical encoding: known enum values,
 * well-formed digests, bounded well-formed strings, and lists in canonical order without
 * duplicates. Shared by the encoder (on a sorted copy) and the decoder (on what it read).
 */
import { AttestdError } from '../../base/errors.js';
import type { FileDigest, GpuMeasurement, ModuleDigest } from './measurement-types.js';

export const LIMITS = {
  gpus: 64,
  digests: 256,
  stringBytes: 4096,
  encodedBytes: 1 << 20,
} as const;

const SOURCES: readonly string[] = ['nvml', 'nvidia-smi', 'none'];
const TOGGLES: readonly string[] = ['enabled', 'disabled', 'n/a'];
const CC_MODES: readonly string[] = ['on', 'off', 'devtools', 'n/a'];
const ENVIRONMENTS: readonly string[] = ['unavailable', 'sim', 'prod', 'n/a'];
const DEVTOOLS: readonly string[] = ['on', 'off', 'n/a'];
const READY: readonly string[] = ['ready', 'not-ready', 'n/a'];
const UNKNOWN_VALUE = /^unknown\((0|[1-9][0-9]{0,9})\)$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function fail(message: string): never {
  throw new AttestdError('INVALID_ARGUMENT', `GPU measurement: ${message}`);
}

function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function compareModules(a: ModuleDigest, b: ModuleDigest): number {
  return utf8Compare(a.name, b.name) || utf8Compare(a.path, b.path);
}

export function compareFiles(a: FileDigest, b: FileDigest): number {
  return utf8Compare(a.path, b.path);
}

function checkString(value: unknown, field: string): void {
  if (typeof value !== 'string') fail(`${field} must be a string`);
  // A lone surrogate would be replaced on encoding, so two strings could share one encoding.
  if (LONE_SURROGATE.test(value)) fail(`${field} is not well-formed Unicode`);
  if (Buffer.byteLength(value, 'utf8') > LIMITS.stringBytes) fail(`${field} exceeds ${LIMITS.stringBytes} bytes`);
}

function checkEnum(value: unknown, allowed: readonly string[], field: string, openEnded: boolean): void {
  checkString(value, field);
  const v = value as string;
  if (allowed.includes(v)) return;
  if (openEnded && UNKNOWN_VALUE.test(v) && Number(v.slice(8, -1)) <= 0xffff_ffff) return;
  fail(`${field} has the unknown value ${JSON.stringify(v.slice(0, 40))}`);
}

function checkList(value: unknown, field: string, max: number): unknown[] {
  if (!Array.isArray(value)) fail(`${field} must be an array`);
  if (value.length > max) fail(`${field} holds more than ${max} entries`);
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/**
 * Throws INVALID_ARGUMENT unless `m` is a measurement in canonical form (see measurement.ts).
 * Accepts `unknown` so that it also guards values that did not come through the type system.
 */
export function validateMeasurement(m: unknown): asserts m is GpuMeasurement {
  if (!isRecord(m)) fail('not an object');
  checkEnum(m.source, SOURCES, 'source', false);
  if (m.noDriverReason !== undefined) checkString(m.noDriverReason, 'noDriverReason');
  if ((m.source === 'nvml') !== (m.noDriverReason === undefined)) {
    fail('noDriverReason must be present exactly when source is not nvml');
  }
  for (const f of ['driverVersion', 'nvmlVersion', 'cudaDriverVersion', 'procDriverVersion']) checkString(m[f], f);

  let lastIndex = -1;
  for (const [i, g] of checkList(m.gpus, 'gpus', LIMITS.gpus).entries()) {
    const at = `gpus[${i}]`;
    if (!isRecord(g)) fail(`${at} is not an object`);
    const index = g.index;
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > 0xffff_ffff) {
      fail(`${at}.index must be an integer in [0, 2^32)`);
    }
    if (index <= lastIndex) fail(`${at}.index is out of order or repeated`);
    lastIndex = index;
    for (const f of ['name', 'uuid', 'serial', 'pciBusId', 'vbiosVersion', 'inforomImageVersion']) {
      checkString(g[f], `${at}.${f}`);
    }
    for (const f of ['eccModeCurrent', 'migModeCurrent', 'persistenceMode']) checkEnum(g[f], TOGGLES, `${at}.${f}`, true);
    checkEnum(g.ccMode, CC_MODES, `${at}.ccMode`, false);
  }

  const cc = m.ccState;
  if (!isRecord(cc)) fail('ccState is not an object');
  checkEnum(cc.environment, ENVIRONMENTS, 'ccState.environment', true);
  checkEnum(cc.ccFeature, TOGGLES, 'ccState.ccFeature', true);
  checkEnum(cc.devToolsMode, DEVTOOLS, 'ccState.devToolsMode', true);
  checkEnum(cc.gpusReady, READY, 'ccState.gpusReady', true);

  let prevModule: ModuleDigest | undefined;
  for (const [i, d] of checkList(m.moduleDigests, 'moduleDigests', LIMITS.digests).entries()) {
    const at = `moduleDigests[${i}]`;
    if (!isRecord(d)) fail(`${at} is not an object`);
    checkString(d.name, `${at}.name`);
    checkString(d.path, `${at}.path`);
    checkString(d.sha256, `${at}.sha256`);
    if (d.name === '') fail(`${at}.name is empty`);
    const found = d.path !== '';
    if (found ? !SHA256_HEX.test(d.sha256 as string) : d.sha256 !== '') {
      fail(`${at}.sha256 must be 64 lowercase hex digits, or '' with an empty path`);
    }
    const cur = d as unknown as ModuleDigest;
    if (prevModule !== undefined && compareModules(prevModule, cur) >= 0) fail(`${at} is out of order or repeated`);
    prevModule = cur;
  }

  let prevFile: FileDigest | undefined;
  for (const [i, d] of checkList(m.firmwareDigests, 'firmwareDigests', LIMITS.digests).entries()) {
    const at = `firmwareDigests[${i}]`;
    if (!isRecord(d)) fail(`${at} is not an object`);
    checkString(d.path, `${at}.path`);
    checkString(d.sha256, `${at}.sha256`);
    if (d.path === '') fail(`${at}.path is empty`);
    if (!SHA256_HEX.test(d.sha256 as string)) fail(`${at}.sha256 must be 64 lowercase hex digits`);
    const cur = d as unknown as FileDigest;
    if (prevFile !== undefined && compareFiles(prevFile, cur) >= 0) fail(`${at} is out of order or repeated`);
    prevFile = cur;
  }
}
