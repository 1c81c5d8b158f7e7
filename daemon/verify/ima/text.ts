/**
 * Byte-level helpers for the ASCII measurement list. The list is attacker-controlled text
 * (file names come from whoever named the file), so nothing here builds a RegExp, every
 * scan is bounded by an explicit end, and text echoed into error messages is made printable
 * and short so a hostile file name cannot forge log lines or flood the operator log.
 */
import { AttestdError } from '../../base/errors.js';

export const SPACE = 0x20;
export const NEWLINE = 0x0a;

/** Index of the first `byte` in buf[from, end), or -1. */
export function indexIn(buf: Buffer, byte: number, from: number, end: number): number {
  if (end <= from) return -1;
  // Searching a view keeps the scan inside [from, end): a byte absent from the line must
  // not cost a scan of the rest of the list.
  const at = buf.subarray(from, end).indexOf(byte);
  return at === -1 ? -1 : from + at;
}

/** Index of the last `byte` in buf[from, end), or -1. */
export function lastIndexIn(buf: Buffer, byte: number, from: number, end: number): number {
  if (end <= from) return -1;
  const at = buf.subarray(from, end).lastIndexOf(byte);
  return at === -1 ? -1 : from + at;
}

function nibble(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1;
}

/** True when buf[from, end) is an even number of lowercase hex digits (the kernel's output). */
export function isLowerHex(buf: Buffer, from: number, end: number): boolean {
  if ((end - from) % 2 !== 0) return false;
  for (let i = from; i < end; i++) {
    if (nibble(buf[i] ?? 0xff) < 0) return false;
  }
  return true;
}

/** Decodes lowercase hex in buf[from, end); the caller has bounded the length. */
export function decodeHex(buf: Buffer, from: number, end: number, line: number, what: string): Buffer {
  if (!isLowerHex(buf, from, end)) imaMalformed(line, `${what} is not lowercase hex`);
  const out = Buffer.alloc((end - from) / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = (nibble(buf[from + 2 * i] ?? 0) << 4) | nibble(buf[from + 2 * i + 1] ?? 0);
  }
  return out;
}

/** Up to `max` bytes of untrusted text, with controls and non-ASCII shown as \xNN. */
export function printable(bytes: Uint8Array | string, max = 200): string {
  const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  let out = '';
  const n = Math.min(buf.length, max);
  for (let i = 0; i < n; i++) {
    const c = buf[i] ?? 0;
    out += c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return buf.length > max ? `${out}…` : out;
}

export function imaMalformed(line: number, message: string): never {
  throw new AttestdError('IMA_MALFORMED', `IMA line ${line}: ${message}`);
}
