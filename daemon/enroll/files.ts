/**
 * The three files of enrollment by credential activation, as JSON an operator can read and
 * carry across an air gap:
 *
 *  - the challenge, from the enrolling party to the host: which EK and AK it is for, and the
 *    credential made for them (TPM2_MakeCredential, verify/credential/make-credential.ts);
 *  - the state, kept by the enrolling party (0600): the EK certificate, the AK public area and
 *    the secret itself, to check the answer and issue the AK certificate;
 *  - the response, from the host: a proof that its TPM recovered the secret, an HMAC keyed with
 *    the secret over the challenge id and the AK name (the secret itself never travels back).
 *
 * Every file is hostile input when read: bounded, every field checked for type, length and
 * encoding, nothing unknown accepted (ENROLL_INVALID names the field).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { AttestdError } from '../base/errors.js';

export const MAX_ENROLL_FILE = 64 * 1024;
const ID_BYTES = 16;

export interface Challenge {
  id: Buffer;
  ekKind: 'rsa' | 'ecc';
  ekCertificateSha256: Buffer;
  akName: Buffer;
  credentialBlob: Buffer;
  secret: Buffer;
}

export interface EnrollState {
  id: Buffer;
  ekKind: 'rsa' | 'ecc';
  ekCertificate: Buffer;
  akPublic: Buffer;
  credential: Buffer;
  createdMs: number;
  /** Set once an AK certificate was issued for it: a state completes once. */
  completedMs?: number;
}

export interface EnrollResponse {
  id: Buffer;
  akName: Buffer;
  proof: Buffer;
}

const invalid = (message: string): never => {
  throw new AttestdError('ENROLL_INVALID', message);
};

/** The proof a host gives: HMAC-SHA256(secret, "attestd/enroll/v1" || id || AK name). */
export function enrollProof(credential: Uint8Array, id: Uint8Array, akName: Uint8Array): Buffer {
  return createHmac('sha256', credential).update('attestd/enroll/v1').update(id).update(akName).digest();
}

export function proofMatches(expected: Buffer, got: Buffer): boolean {
  return expected.length === got.length && timingSafeEqual(expected, got);
}

type Json = Record<string, unknown>;

function object(bytes: Uint8Array, kind: string): Json {
  if (bytes.length > MAX_ENROLL_FILE) invalid(`the ${kind} file is larger than ${MAX_ENROLL_FILE} bytes`);
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    invalid(`the ${kind} file is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) invalid(`the ${kind} file is not a JSON object`);
  const o = v as Json;
  if (o.attestd_enroll !== `${kind}/v1`) invalid(`not an attestd enrollment ${kind} (attestd_enroll is not "${kind}/v1")`);
  return o;
}

function only(o: Json, kind: string, keys: readonly string[]): void {
  for (const k of Object.keys(o)) if (k !== 'attestd_enroll' && !keys.includes(k)) invalid(`${kind}: unknown field "${k}"`);
}

function hex(o: Json, key: string, min: number, max: number): Buffer {
  const v = o[key];
  if (typeof v !== 'string' || !/^(?:[0-9a-f]{2})*$/.test(v)) return invalid(`${key}: expected lowercase hex`);
  const b = Buffer.from(v, 'hex');
  if (b.length < min || b.length > max) invalid(`${key}: ${b.length} bytes, expected ${min === max ? min : `${min} to ${max}`}`);
  return b;
}

function b64(o: Json, key: string, max: number): Buffer {
  const v = o[key];
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) return invalid(`${key}: expected base64`);
  const b = Buffer.from(v, 'base64');
  if (b.length === 0 || b.length > max) invalid(`${key}: ${b.length} bytes, expected 1 to ${max}`);
  return b;
}

function kind(o: Json): 'rsa' | 'ecc' {
  const v = o.ek_kind;
  return v === 'rsa' || v === 'ecc' ? v : invalid('ek_kind: expected "rsa" or "ecc"');
}

function time(o: Json, key: string, optional: boolean): number | undefined {
  const v = o[key];
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return invalid(`${key}: expected a non-negative integer`);
  return v;
}

const NAME_MAX = 2 + 64;

export function encodeChallenge(c: Challenge): Buffer {
  return Buffer.from(`${JSON.stringify({
    attestd_enroll: 'challenge/v1', id: c.id.toString('hex'), ek_kind: c.ekKind, ek_certificate_sha256: c.ekCertificateSha256.toString('hex'),
    ak_name: c.akName.toString('hex'), credential_blob: c.credentialBlob.toString('base64'), secret: c.secret.toString('base64'),
  }, null, 2)}\n`);
}

export function decodeChallenge(bytes: Uint8Array): Challenge {
  const o = object(bytes, 'challenge');
  only(o, 'challenge', ['id', 'ek_kind', 'ek_certificate_sha256', 'ak_name', 'credential_blob', 'secret']);
  return {
    id: hex(o, 'id', ID_BYTES, ID_BYTES), ekKind: kind(o), ekCertificateSha256: hex(o, 'ek_certificate_sha256', 32, 32),
    akName: hex(o, 'ak_name', 4, NAME_MAX), credentialBlob: b64(o, 'credential_blob', 1024), secret: b64(o, 'secret', 1024),
  };
}

export function encodeState(s: EnrollState): Buffer {
  return Buffer.from(`${JSON.stringify({
    attestd_enroll: 'state/v1', id: s.id.toString('hex'), ek_kind: s.ekKind, ek_certificate: s.ekCertificate.toString('base64'),
    ak_public: s.akPublic.toString('base64'), credential: s.credential.toString('hex'), created_ms: s.createdMs,
    ...(s.completedMs !== undefined ? { completed_ms: s.completedMs } : {}),
  }, null, 2)}\n`);
}

export function decodeState(bytes: Uint8Array): EnrollState {
  const o = object(bytes, 'state');
  only(o, 'state', ['id', 'ek_kind', 'ek_certificate', 'ak_public', 'credential', 'created_ms', 'completed_ms']);
  const completedMs = time(o, 'completed_ms', true);
  return {
    id: hex(o, 'id', ID_BYTES, ID_BYTES), ekKind: kind(o), ekCertificate: b64(o, 'ek_certificate', 16 * 1024),
    akPublic: b64(o, 'ak_public', 1024), credential: hex(o, 'credential', 16, 64), createdMs: time(o, 'created_ms', false) as number,
    ...(completedMs !== undefined ? { completedMs } : {}),
  };
}

export function encodeResponse(r: EnrollResponse): Buffer {
  return Buffer.from(`${JSON.stringify({
    attestd_enroll: 'response/v1', id: r.id.toString('hex'), ak_name: r.akName.toString('hex'), proof: r.proof.toString('hex'),
  }, null, 2)}\n`);
}

export function decodeResponse(bytes: Uint8Array): EnrollResponse {
  const o = object(bytes, 'response');
  only(o, 'response', ['id', 'ak_name', 'proof']);
  return { id: hex(o, 'id', ID_BYTES, ID_BYTES), akName: hex(o, 'ak_name', 4, NAME_MAX), proof: hex(o, 'proof', 32, 32) };
}
