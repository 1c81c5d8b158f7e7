/**
 * C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 signatures (type 0x01), the
 * envelope of attestd checkpoints. A note is text ending in a newline, a blank line, then
 * signature lines "— <key name> <base64(key ID (u32 BE) || signature)>".
 *
 * Choices where the spec leaves room: a note is at most MAX_NOTE_BYTES with at most
 * MAX_SIGNATURES signature lines; every line from a known key (name and key ID both match)
 * must verify, including repeats, or the whole note is refused; lines from unknown keys are
 * syntax-checked and otherwise ignored; base64 must be canonical.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { AttestdError } from '../base/errors.js';
import { decodeBase64Strict } from './base64-strict.js';
import type { Signer } from '../base/signer.js';

export interface NoteVerifier {
  name: string;
  /** uint32 key ID: first 4 bytes, big-endian, of SHA-256(name || 0x0A || 0x01 || key). */
  keyHash: number;
  key: KeyObject;
}


export const MAX_NOTE_BYTES = 1024 * 1024;
export const MAX_SIGNATURES = 100;
const ALG_ED25519 = 0x01;
const ED25519_KEY_SIZE = 32;
const ED25519_SIG_SIZE = 64;
/** Room for any assigned signature type, post-quantum ones included, on unknown-key lines. */
const MAX_SIGNATURE_BYTES = 4 + 8192;
const MAX_VKEY_CHARS = 4096;
const SIG_LINE_PREFIX = '\u2014 ';
/** Unicode white space (plus U+0085, which \s lacks) or "+": not allowed in key names. */
const NAME_FORBIDDEN = /[\s\u0085+]/u;
const KEY_HASH_HEX = /^[0-9a-fA-F]{8}$/;

function malformed(reason: string): AttestdError {
  return new AttestdError('NOTE_MALFORMED', `signed note malformed: ${reason}`);
}

function badArgument(reason: string): AttestdError {
  return new AttestdError('INVALID_ARGUMENT', reason);
}

/** True if `s` is well-formed UTF-16 (so encodes to valid UTF-8) with no control character but newline. */
export function isNoteText(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20) {
      if (c !== 0x0a) return false;
    } else if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false;
    }
  }
  return true;
}

export function isKeyName(name: unknown): name is string {
  return typeof name === 'string' && name.length > 0 && name.length <= MAX_VKEY_CHARS && isNoteText(name) && !NAME_FORBIDDEN.test(name);
}

export function noteKeyHash(name: string, publicKey: Uint8Array): number {
  if (!isKeyName(name)) throw badArgument('key name must be non-empty without spaces or "+"');
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== ED25519_KEY_SIZE) throw badArgument('Ed25519 public key must be 32 bytes');
  const h = createHash('sha256').update(name, 'utf8').update(Buffer.from([0x0a, ALG_ED25519])).update(publicKey).digest();
  return h.readUInt32BE(0);
}

/** The vkey "<name>+<hex key ID>+<base64(0x01 || key)>" for a raw Ed25519 public key. */
export function verifierKeyString(name: string, publicKey: Uint8Array): string {
  const hash = noteKeyHash(name, publicKey);
  const keyData = Buffer.concat([Buffer.from([ALG_ED25519]), publicKey]).toString('base64');
  return `${name}+${hash.toString(16).padStart(8, '0')}+${keyData}`;
}

/**
 * Parses a vkey. Checks: a valid key name; an 8-digit hex key ID; canonical base64 of 0x01
 * followed by 32 bytes; the key ID equals the one computed from name and key. Throws
 * INVALID_ARGUMENT: a vkey is configuration, not evidence.
 */
export function parseVerifierKey(vkey: string): NoteVerifier {
  if (typeof vkey !== 'string' || vkey.length > MAX_VKEY_CHARS) throw badArgument('verifier key is not a string of sane length');
  const plus1 = vkey.indexOf('+');
  const plus2 = plus1 < 0 ? -1 : vkey.indexOf('+', plus1 + 1);
  if (plus2 < 0) throw badArgument('verifier key is not <name>+<hash>+<key>');
  const name = vkey.slice(0, plus1);
  const hashHex = vkey.slice(plus1 + 1, plus2);
  const keyData = decodeBase64Strict(vkey.slice(plus2 + 1), 1 + ED25519_KEY_SIZE);
  if (!isKeyName(name)) throw badArgument('verifier key name is not valid');
  if (!KEY_HASH_HEX.test(hashHex)) throw badArgument('verifier key hash is not 8 hex digits');
  if (keyData === undefined || keyData.length !== 1 + ED25519_KEY_SIZE) throw badArgument('verifier key data is not base64 of 33 bytes');
  if (keyData[0] !== ALG_ED25519) throw badArgument('verifier key is not an Ed25519 key');
  const raw = keyData.subarray(1);
  const keyHash = Number.parseInt(hashHex, 16);
  if (noteKeyHash(name, raw) !== keyHash) throw badArgument('verifier key hash does not match its name and key');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  } catch (err) {
    throw new AttestdError('INVALID_ARGUMENT', 'verifier key is not a usable Ed25519 key', { cause: err });
  }
  return { name, keyHash, key };
}

/** Signs `body` (non-empty note text ending in a newline) and returns the whole note. */
export function signNote(body: string, name: string, signer: Signer): string {
  if (typeof body !== 'string' || body.length === 0 || !body.endsWith('\n') || !isNoteText(body)) {
    throw badArgument('note body must be non-empty text ending in a newline, without control characters');
  }
  const publicKey = signer.publicKey();
  const keyHash = noteKeyHash(name, publicKey);
  const signature = signer.sign(Buffer.from(body, 'utf8'));
  if (!(signature instanceof Uint8Array) || signature.length !== ED25519_SIG_SIZE) throw badArgument('signer did not return a 64-byte signature');
  const blob = Buffer.alloc(4 + ED25519_SIG_SIZE);
  blob.writeUInt32BE(keyHash, 0);
  blob.set(signature, 4);
  const note = `${body}\n${SIG_LINE_PREFIX}${name} ${blob.toString('base64')}\n`;
  if (Buffer.byteLength(note) > MAX_NOTE_BYTES) throw badArgument('signed note would exceed MAX_NOTE_BYTES');
  return note;
}

interface SignatureLine {
  name: string;
  keyHash: number;
  signature: Buffer;
}

function decodeNote(note: string | Uint8Array): string {
  if (note instanceof Uint8Array) {
    if (note.length > MAX_NOTE_BYTES) throw malformed('too large');
    try {
      return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(note);
    } catch {
      throw malformed('not valid UTF-8');
    }
  }
  if (typeof note !== 'string') throw malformed('not a string');
  if (note.length > MAX_NOTE_BYTES || Buffer.byteLength(note) > MAX_NOTE_BYTES) throw malformed('too large');
  return note;
}

function parseSignatureLines(block: string): SignatureLine[] {
  if (block.length === 0 || !block.endsWith('\n')) throw malformed('signature block missing or not newline-terminated');
  const out: SignatureLine[] = [];
  let start = 0;
  while (start < block.length) {
    if (out.length === MAX_SIGNATURES) throw malformed(`more than ${MAX_SIGNATURES} signatures`);
    const end = block.indexOf('\n', start);
    const line = block.slice(start, end);
    start = end + 1;
    if (!line.startsWith(SIG_LINE_PREFIX)) throw malformed('signature line does not start with an em dash and a space');
    const rest = line.slice(SIG_LINE_PREFIX.length);
    const space = rest.indexOf(' ');
    if (space < 0) throw malformed('signature line has no signature');
    const name = rest.slice(0, space);
    if (!isKeyName(name)) throw malformed('signature line has an invalid key name');
    const blob = decodeBase64Strict(rest.slice(space + 1), MAX_SIGNATURE_BYTES);
    if (blob === undefined || blob.length < 5) throw malformed('signature is not canonical base64 of a key ID and signature');
    out.push({ name, keyHash: blob.readUInt32BE(0), signature: blob.subarray(4) });
  }
  return out;
}

function checkVerifiers(verifiers: NoteVerifier[]): void {
  if (!Array.isArray(verifiers)) throw badArgument('verifiers must be an array');
  for (const v of verifiers) {
    const ok = v !== null && typeof v === 'object' && isKeyName(v.name) && Number.isInteger(v.keyHash) && v.keyHash >= 0 && v.keyHash <= 0xffffffff &&
      typeof v.key === 'object' && v.key !== null && v.key.type === 'public' && v.key.asymmetricKeyType === 'ed25519';
    if (!ok) throw badArgument('each verifier needs a key name, a uint32 key ID and an Ed25519 public key');
  }
}

/**
 * Opens a signed note. Checks, in order: at most MAX_NOTE_BYTES of valid UTF-8 without
 * control characters other than newline; a blank line separating text (ending in newline)
 * from 1..MAX_SIGNATURES well-formed signature lines (NOTE_MALFORMED); every line whose key
 * name and key ID match a known verifier is a 64-byte Ed25519 signature over the text that
 * verifies with that key; at least one such line exists (NOTE_SIGNATURE_INVALID).
 * Returns the text and the names of the verifiers that signed it, in note order.
 */
export function openNote(note: string | Uint8Array, verifiers: NoteVerifier[]): { body: string; verifiedBy: string[] } {
  checkVerifiers(verifiers);
  const s = decodeNote(note);
  if (!isNoteText(s)) throw malformed('control character or invalid UTF-16');
  const split = s.lastIndexOf('\n\n');
  if (split < 0) throw malformed('no blank line before the signatures');
  const body = s.slice(0, split + 1);
  const lines = parseSignatureLines(s.slice(split + 2));

  const text = Buffer.from(body, 'utf8');
  const verifiedBy: string[] = [];
  for (const line of lines) {
    const known = verifiers.filter((v) => v.name === line.name && v.keyHash === line.keyHash);
    if (known.length === 0) continue;
    const good = line.signature.length === ED25519_SIG_SIZE && known.some((v) => verify(null, text, v.key, line.signature));
    if (!good) throw new AttestdError('NOTE_SIGNATURE_INVALID', `signature by ${line.name} does not verify`);
    if (!verifiedBy.includes(line.name)) verifiedBy.push(line.name);
  }
  if (verifiedBy.length === 0) throw new AttestdError('NOTE_SIGNATURE_INVALID', 'no signature from a known key');
  return { body, verifiedBy };
}
