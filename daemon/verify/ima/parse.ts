/**
 * The IMA runtime measurement list in its ASCII form
 * (/sys/kernel/security/ima/ascii_runtime_measurements), one entry a line:
 *
 *   <PCR> <template hash hex> <template name> <template data...>
 *
 * The list is attacker-controlled until replayed against a quote: the total size, the line
 * length and the entry count are bounded before anything is decoded, every error names the
 * line, and each entry's template hash is checked against its recomputed template data
 * here, so no caller ever sees an entry whose fields and listed hash disagree.
 */
import { hash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { AttestdError } from '../../base/errors.js';
import type { HashAlg } from '../tpm-alg.js';
import { NEWLINE, SPACE, decodeHex, imaMalformed, indexIn, printable } from './text.js';
import { parseTemplateFields, serialiseTemplate, templateNameOf, type ImaTemplateName } from './templates.js';

/** Longest line accepted; a kernel line is a path (PATH_MAX 4096) plus at most a signature. */
export const IMA_MAX_LINE_BYTES = 8192;
export const IMA_MAX_ENTRIES = 1_000_000;
export const IMA_MAX_LIST_BYTES = 256 * 1024 * 1024;
/** The highest PCR a TPM 2.0 PC-client platform has. */
const MAX_PCR = 23;

export interface ImaEntry {
  /** 1-based line number in the whole list (also the entry's position). */
  line: number;
  pcr: number;
  /** The template hash as listed; all zeros marks a measurement violation. */
  templateHash: Buffer;
  /** Algorithm of the listed template hash, from its length (SHA-1 on every current kernel). */
  templateHashAlg: HashAlg;
  template: ImaTemplateName;
  /** File digest algorithm as the kernel names it ("sha256"). */
  digestAlg: string;
  digest: Buffer;
  /** File name decoded as UTF-8 (lossy when `pathIsUtf8` is false). */
  path: string;
  pathBytes: Buffer;
  pathIsUtf8: boolean;
  /** ima-sig: the signature (empty when none); ima-buf: the measured buffer. */
  extra?: Buffer;
  violation: boolean;
  /** The template data as the kernel serialises it for hashing. */
  templateData: Buffer;
}

export interface ImaParseOptions {
  /** Line number of the first line in `bytes` (for a tail of a longer list); default 1. */
  firstLine?: number;
  /** Lower limits than the defaults; values above the defaults are refused. */
  maxEntries?: number;
  maxLineBytes?: number;
  maxListBytes?: number;
}

export interface ImaParsed {
  entries: ImaEntry[];
  /** Bytes consumed: every complete line. */
  consumed: number;
  /** Bytes after the last newline (an entry still being written); 0 for a whole list. */
  pending: number;
}

const HASH_BY_SIZE: ReadonlyMap<number, HashAlg> = new Map([
  [20, 'sha1'],
  [32, 'sha256'],
  [48, 'sha384'],
  [64, 'sha512'],
]);

/**
 * Parses a whole ASCII list. Checks, each naming the line (IMA_MALFORMED unless noted):
 * total size, entry count and line length within bounds; every line newline-terminated;
 * PCR a decimal 0..23; template hash lowercase hex of a known digest size; template one of
 * ima, ima-ng, ima-sig, ima-buf with well-formed data; and the listed template hash equal
 * to the hash of the serialised template data (IMA_TEMPLATE_HASH_MISMATCH), except for
 * violations (all-zero template hash).
 */
export function parseImaList(bytes: Uint8Array | string, options: ImaParseOptions = {}): ImaEntry[] {
  const parsed = parseImaLines(bytes, options);
  if (parsed.pending !== 0) {
    imaMalformed((options.firstLine ?? 1) + parsed.entries.length, 'last line is not terminated by a newline (truncated list?)');
  }
  return parsed.entries;
}

/** Like parseImaList, but leaves an unterminated last line unparsed and reports its size. */
export function parseImaLines(bytes: Uint8Array | string, options: ImaParseOptions = {}): ImaParsed {
  const maxEntries = limit(options.maxEntries, IMA_MAX_ENTRIES, 'maxEntries');
  const maxLine = limit(options.maxLineBytes, IMA_MAX_LINE_BYTES, 'maxLineBytes');
  const maxList = limit(options.maxListBytes, IMA_MAX_LIST_BYTES, 'maxListBytes');
  const firstLine = options.firstLine ?? 1;
  if (!Number.isSafeInteger(firstLine) || firstLine < 1) {
    throw new AttestdError('INVALID_ARGUMENT', 'firstLine must be a positive integer');
  }
  const size = typeof bytes === 'string' ? Buffer.byteLength(bytes, 'utf8') : bytes.byteLength;
  if (size > maxList) {
    throw new AttestdError('IMA_MALFORMED', `IMA list is ${size} bytes, more than ${maxList}`);
  }
  const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

  const entries: ImaEntry[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const line = firstLine + entries.length;
    const nl = indexIn(buf, NEWLINE, pos, Math.min(buf.length, pos + maxLine + 1));
    if (nl === -1) {
      if (buf.length - pos > maxLine) imaMalformed(line, `longer than ${maxLine} bytes`);
      return { entries, consumed: pos, pending: buf.length - pos };
    }
    if (entries.length >= maxEntries) imaMalformed(line, `more than ${maxEntries} entries`);
    entries.push(parseImaLine(buf, pos, nl, line));
    pos = nl + 1;
  }
  return { entries, consumed: pos, pending: 0 };
}

function limit(value: number | undefined, max: number, what: string): number {
  if (value === undefined) return max;
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new AttestdError('INVALID_ARGUMENT', `${what} must be an integer in 1..${max}`);
  }
  return value;
}

/** One line, buf[start, end) without its newline. */
function parseImaLine(buf: Buffer, start: number, end: number, line: number): ImaEntry {
  if (end === start) imaMalformed(line, 'empty line');
  // The kernel prints the PCR with "%2d", so PCRs below 10 carry a leading space.
  const pcrStart = buf[start] === SPACE ? start + 1 : start;
  const s1 = indexIn(buf, SPACE, pcrStart, end);
  const width = s1 - pcrStart;
  if (s1 === -1 || width === 0 || width > (pcrStart === start ? 2 : 1)) imaMalformed(line, 'does not start with a PCR index');
  const pcr = decimal(buf, pcrStart, s1);
  if (pcr === undefined || pcr > MAX_PCR || (width === 2 && buf[pcrStart] === 0x30)) {
    imaMalformed(line, `bad PCR index "${printable(buf.subarray(pcrStart, s1), 8)}"`);
  }

  const s2 = indexIn(buf, SPACE, s1 + 1, end);
  if (s2 === -1) imaMalformed(line, 'no template name');
  const templateHashAlg = HASH_BY_SIZE.get((s2 - s1 - 1) / 2);
  if (templateHashAlg === undefined) imaMalformed(line, 'template hash has no known digest size');
  const templateHash = decodeHex(buf, s1 + 1, s2, line, 'template hash');

  const s3 = indexIn(buf, SPACE, s2 + 1, end);
  if (s3 === -1) imaMalformed(line, 'no template data');
  const template = templateNameOf(buf, s2 + 1, s3, line);
  const fields = parseTemplateFields(template, buf, s3 + 1, end, line);
  const templateData = serialiseTemplate(template, fields);
  const violation = templateHash.every((b) => b === 0);
  const pathIsUtf8 = isUtf8(fields.name);
  const path = fields.name.toString('utf8');

  if (!violation && !hash(templateHashAlg, templateData, 'buffer').equals(templateHash)) {
    throw new AttestdError(
      'IMA_TEMPLATE_HASH_MISMATCH',
      `IMA line ${line} (${printable(fields.name)}): template hash does not match the template data`,
    );
  }
  const entry: ImaEntry = {
    line,
    pcr,
    templateHash,
    templateHashAlg,
    template,
    digestAlg: fields.digestAlg,
    digest: fields.digest,
    path,
    pathBytes: fields.name,
    pathIsUtf8,
    violation,
    templateData,
  };
  if (fields.extra !== undefined) entry.extra = fields.extra;
  return entry;
}

function decimal(buf: Buffer, from: number, end: number): number | undefined {
  let v = 0;
  for (let i = from; i < end; i++) {
    const c = buf[i] ?? 0;
    if (c < 0x30 || c > 0x39) return undefined;
    v = v * 10 + (c - 0x30);
  }
  return v;
}

/** "sha256:ab12…" as an allowlist or a reason prints a file digest. */
export function formatFileDigest(entry: Pick<ImaEntry, 'digestAlg' | 'digest'>): string {
  return `${entry.digestAlg}:${entry.digest.toString('hex')}`;
}
