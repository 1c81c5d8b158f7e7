/**
 * C2SP tlog-checkpoint note bodies (https://c2sp.org/tlog-checkpoint): origin line, tree
 * size in decimal, base64 root hash, then optional extension lines, each line ending in a
 * newline. Only the body lives here; it reaches parseCheckpoint after openNote has checked a
 * signature over it, never before.
 *
 * Beyond the spec's MUSTs, parsing refuses: sizes above 2^53 - 1 (they cannot be carried as a
 * number; no attestd log gets near), a root that is not the canonical base64 of 32 bytes,
 * more than MAX_EXTENSION_LINES extension lines, and any text a signed note may not carry
 * (control characters other than newline, unpaired surrogates).
 */
import { AttestdError } from '../base/errors.js';
import { decodeBase64Strict } from './base64-strict.js';
import { isNoteText, MAX_NOTE_BYTES } from './signed-note.js';

export interface Checkpoint {
  origin: string;
  size: number;
  root: Buffer;
  extensions: string[];
}

export const MAX_EXTENSION_LINES = 64;
const ROOT_SIZE = 32;
const SIZE_LINE = /^(?:0|[1-9][0-9]{0,15})$/;

function malformed(reason: string): AttestdError {
  return new AttestdError('CHECKPOINT_MALFORMED', `checkpoint malformed: ${reason}`);
}

function isLineText(s: unknown): s is string {
  return typeof s === 'string' && s.length > 0 && !s.includes('\n') && isNoteText(s);
}

/** The note body for `c`. Throws INVALID_ARGUMENT for anything parseCheckpoint would refuse. */
export function formatCheckpoint(c: Checkpoint): string {
  if (!isLineText(c.origin)) throw new AttestdError('INVALID_ARGUMENT', 'checkpoint origin must be one non-empty line');
  if (!Number.isSafeInteger(c.size) || c.size < 0) throw new AttestdError('INVALID_ARGUMENT', 'checkpoint size must be a non-negative safe integer');
  if (!(c.root instanceof Uint8Array) || c.root.length !== ROOT_SIZE) throw new AttestdError('INVALID_ARGUMENT', 'checkpoint root must be 32 bytes');
  if (!Array.isArray(c.extensions) || c.extensions.length > MAX_EXTENSION_LINES || !c.extensions.every(isLineText)) {
    throw new AttestdError('INVALID_ARGUMENT', 'checkpoint extensions must be non-empty single lines');
  }
  const body = [c.origin, String(c.size), Buffer.from(c.root).toString('base64'), ...c.extensions].join('\n') + '\n';
  if (Buffer.byteLength(body) > MAX_NOTE_BYTES) throw new AttestdError('INVALID_ARGUMENT', 'checkpoint too large');
  return body;
}

/**
 * Parses a checkpoint body. Checks: a string of at most MAX_NOTE_BYTES of note text ending
 * in a newline; at least three lines; a non-empty origin; a decimal size with no leading
 * zero (except "0") that fits a safe integer; a root that is the canonical base64 of 32
 * bytes; at most MAX_EXTENSION_LINES extension lines, none empty. Throws CHECKPOINT_MALFORMED.
 */
export function parseCheckpoint(body: string): Checkpoint {
  if (typeof body !== 'string') throw malformed('not a string');
  if (body.length > MAX_NOTE_BYTES || Buffer.byteLength(body) > MAX_NOTE_BYTES) throw malformed('too large');
  if (!isNoteText(body)) throw malformed('control character or invalid UTF-16');
  if (!body.endsWith('\n')) throw malformed('does not end with a newline');

  const lines: string[] = [];
  let start = 0;
  while (start < body.length) {
    if (lines.length === 3 + MAX_EXTENSION_LINES) throw malformed(`more than ${MAX_EXTENSION_LINES} extension lines`);
    const end = body.indexOf('\n', start);
    lines.push(body.slice(start, end));
    start = end + 1;
  }
  const [origin, sizeLine, rootLine, ...extensions] = lines;
  if (origin === undefined || sizeLine === undefined || rootLine === undefined) throw malformed('fewer than three lines');
  if (origin.length === 0) throw malformed('empty origin');
  if (!SIZE_LINE.test(sizeLine)) throw malformed('tree size is not a canonical decimal');
  const size = Number(sizeLine);
  if (!Number.isSafeInteger(size)) throw malformed('tree size above 2^53 - 1');
  const root = decodeBase64Strict(rootLine, ROOT_SIZE);
  if (root === undefined || root.length !== ROOT_SIZE) throw malformed('root is not canonical base64 of 32 bytes');
  if (extensions.some((e) => e.length === 0)) throw malformed('empty extension line');
  return { origin, size, root, extensions };
}
