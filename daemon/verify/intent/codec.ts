/**
 * The canonical encoding of a resolved execution intent, and its digest. Pure: the daemon
 * encodes what it resolved at acquire; the auditor decodes what the log holds and recomputes
 * the digest the lease token names. One value has exactly one encoding, so the decoder
 * refuses anything the encoder would not have written (order, bounds, trailing bytes).
 *
 * Encoding (big-endian), after a version byte 1:
 *   u8 artifact count, then per artifact, sorted by name (UTF-8 bytes), names unique:
 *     str16 name, u8 measured (0 or 1), str16 path (empty exactly when declared), 32 bytes SHA-256
 *   str8 image digest (empty, or "sha256:" + 64 lowercase hex)
 *   u16 argument count, then per argument: str32 argument (the command line, as the kernel holds it)
 *   str8 job id
 *   u8 label count, then per label, sorted by key (UTF-8 bytes), keys unique: str8 key, str16 value
 * where strN is an N-bit length then that many bytes of UTF-8.
 * Digest: SHA-256("attestd/intent/v1" || encoding).
 */
import { createHash } from 'node:crypto';
import { ByteReader } from '../bytes/reader.js';
import { AttestdError } from '../../base/errors.js';
import { INTENT_LIMITS as L, checkIntentBounds } from './bounds.js';

export interface ResolvedArtifact {
  name: string;
  /** The path the daemon opened and hashed; absent for a declared artifact. */
  path?: string;
  sha256: Buffer;
  /** Hashed by the daemon itself (true) or only declared by the caller (false). */
  measured: boolean;
}

export interface ResolvedIntent {
  artifacts: ResolvedArtifact[];
  imageDigest: string;
  /** The caller's command line as read from the kernel. */
  cmdline: string[];
  jobId: string;
  labels: [string, string][];
}

export const INTENT_DIGEST_CONTEXT = Buffer.from('attestd/intent/v1');
const VERSION = 1;

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

/** The same intent in canonical order: artifacts by name, labels by key. */
export function canonicalIntent(i: ResolvedIntent): ResolvedIntent {
  return {
    artifacts: [...i.artifacts].sort((a, b) => byBytes(a.name, b.name)),
    imageDigest: i.imageDigest,
    cmdline: [...i.cmdline],
    jobId: i.jobId,
    labels: [...i.labels].sort((a, b) => byBytes(a[0], b[0])),
  };
}

/** Encodes an intent (sorted first); throws INTENT_MALFORMED when it is out of bounds. */
export function encodeIntent(intent: ResolvedIntent): Buffer {
  const i = canonicalIntent(intent);
  checkIntentBounds(i);
  const parts: Buffer[] = [Buffer.from([VERSION, i.artifacts.length])];
  for (const a of i.artifacts) {
    parts.push(str(a.name, 2), Buffer.from([a.measured ? 1 : 0]), str(a.path ?? '', 2), a.sha256);
  }
  parts.push(str(i.imageDigest, 1), u16(i.cmdline.length));
  for (const arg of i.cmdline) parts.push(str(arg, 4));
  parts.push(str(i.jobId, 1), Buffer.from([i.labels.length]));
  for (const [k, v] of i.labels) parts.push(str(k, 1), str(v, 2));
  return Buffer.concat(parts);
}

export function intentDigest(encoding: Uint8Array): Buffer {
  return createHash('sha256').update(INTENT_DIGEST_CONTEXT).update(encoding).digest();
}

/** Decodes a canonical encoding; INTENT_MALFORMED for anything the encoder would not write. */
export function decodeIntent(bytes: Uint8Array): ResolvedIntent {
  if (bytes.length > L.maxEncodedBytes) throw new AttestdError('INTENT_MALFORMED', `intent of ${bytes.length} bytes is over ${L.maxEncodedBytes}`);
  const r = new ByteReader(bytes, 'be', 'INTENT_MALFORMED', () => 'intent: ');
  if (r.u8('version') !== VERSION) r.fail('unknown intent version');
  const artifacts: ResolvedArtifact[] = [];
  for (let n = r.u8('artifact count'); n > 0; n--) {
    const name = readStr(r, 2);
    const measured = r.u8('measured');
    if (measured > 1) r.fail('measured is neither 0 nor 1');
    const path = readStr(r, 2);
    const sha256 = Buffer.from(r.bytes(32, 'artifact digest'));
    artifacts.push({ name, ...(path ? { path } : {}), sha256, measured: measured === 1 });
  }
  const imageDigest = readStr(r, 1);
  const cmdline: string[] = [];
  for (let n = r.u16('argument count'); n > 0; n--) cmdline.push(readStr(r, 4));
  const jobId = readStr(r, 1);
  const labels: [string, string][] = [];
  for (let n = r.u8('label count'); n > 0; n--) labels.push([readStr(r, 1), readStr(r, 2)]);
  r.end('intent');
  const intent = { artifacts, imageDigest, cmdline, jobId, labels };
  // Bounds, order and uniqueness at once: the only encoding of a value is the one it re-encodes to.
  if (!encodeIntent(intent).equals(Buffer.from(bytes))) throw new AttestdError('INTENT_MALFORMED', 'intent is not in canonical form');
  return intent;
}

function str(s: string, width: 1 | 2 | 4): Buffer {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(width);
  len.writeUIntBE(b.length, 0, width);
  return Buffer.concat([len, b]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function readStr(r: ByteReader, width: 1 | 2 | 4): string {
  const n = width === 1 ? r.u8('length') : width === 2 ? r.u16('length') : r.u32('length');
  const bytes = r.bytes(n, 'string');
  try {
    return UTF8.decode(bytes);
  } catch {
    return r.fail('a string is not UTF-8');
  }
}
