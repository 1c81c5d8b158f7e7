/**
 * The evidence bundle an attestation result travels in (docs/attestation-results.md): the EAR
 * and what chains its signing key, the daemon's session key, to a TPM a relying party can
 * trust: a quote by the AK whose qualifying data binds the session key and the relying
 * party's nonce, the quoted PCR values, the AK's public area and AK certificate, and the EK
 * certificates. JSON; decoded as hostile input (bounded, every field checked, nothing unknown).
 */
import { createHash } from 'node:crypto';
import { AttestdError } from '../../base/errors.js';
import type { PcrBank } from '../pcr.js';
import type { HashAlg } from '../tpm-alg.js';

const HASH_ALGS: readonly HashAlg[] = ['sha1', 'sha256', 'sha384', 'sha512'];

export const MAX_BUNDLE = 256 * 1024;

export interface ResultBundle {
  ear: string;
  sessionPublicKey: Buffer;
  nonce: Buffer;
  quote: { attest: Buffer; signature: Buffer; akPublic: Buffer; banks: PcrBank[] };
  akCertificate?: Buffer | undefined;
  ekCertificates: Buffer[];
}

/** The quote's qualifying data: SHA-256("attestd/result/v1" || session public key || nonce). */
export function resultBinding(sessionPublicKey: Uint8Array, nonce: Uint8Array): Buffer {
  return createHash('sha256').update('attestd/result/v1').update(sessionPublicKey).update(nonce).digest();
}

const invalid = (message: string): never => {
  throw new AttestdError('RESULT_INVALID', `bundle: ${message}`);
};

export function encodeBundle(b: ResultBundle): string {
  return `${JSON.stringify({
    attestd_result: 'bundle/v1',
    ear: b.ear,
    session_public_key: b.sessionPublicKey.toString('base64'),
    nonce: b.nonce.toString('base64'),
    quote: {
      attest: b.quote.attest.toString('base64'), signature: b.quote.signature.toString('base64'), ak_public: b.quote.akPublic.toString('base64'),
      pcrs: b.quote.banks.map((bank) => ({ alg: bank.alg, values: Object.fromEntries([...bank.values].map(([i, v]) => [String(i), v.toString('hex')])) })),
    },
    ...(b.akCertificate ? { ak_certificate: b.akCertificate.toString('base64') } : {}),
    ek_certificates: b.ekCertificates.map((c) => c.toString('base64')),
  }, null, 2)}\n`;
}

type Json = Record<string, unknown>;

function obj(v: unknown, what: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) invalid(`${what} is not an object`);
  return v as Json;
}

function only(o: Json, what: string, keys: readonly string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) invalid(`${what}: unknown field "${k}"`);
}

function b64(v: unknown, what: string, min: number, max: number): Buffer {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) return invalid(`${what}: expected base64`);
  const b = Buffer.from(v, 'base64');
  if (b.length < min || b.length > max) invalid(`${what}: ${b.length} bytes, expected ${min} to ${max}`);
  return b;
}

function banks(v: unknown): PcrBank[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > 8) return invalid('quote.pcrs: expected 1 to 8 banks');
  return v.map((raw, n) => {
    const o = obj(raw, `quote.pcrs[${n}]`);
    only(o, `quote.pcrs[${n}]`, ['alg', 'values']);
    const alg = o.alg as HashAlg;
    if (!(HASH_ALGS as readonly string[]).includes(alg)) invalid(`quote.pcrs[${n}].alg: unknown hash ${String(o.alg)}`);
    const values = new Map<number, Buffer>();
    for (const [k, hex] of Object.entries(obj(o.values, `quote.pcrs[${n}].values`))) {
      if (!/^(?:[0-9]|1[0-9]|2[0-3])$/.test(k)) invalid(`quote.pcrs[${n}].values: PCR "${k}"`);
      if (typeof hex !== 'string' || !/^(?:[0-9a-f]{2}){20,64}$/.test(hex)) invalid(`quote.pcrs[${n}].values[${k}]: expected a hex digest`);
      values.set(Number(k), Buffer.from(hex as string, 'hex'));
    }
    return { alg, values };
  });
}

export function decodeBundle(text: string | Uint8Array): ResultBundle {
  const s = typeof text === 'string' ? text : Buffer.from(text).toString('utf8');
  if (s.length > MAX_BUNDLE) invalid(`larger than ${MAX_BUNDLE} bytes`);
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch {
    invalid('not JSON');
  }
  const o = obj(v, 'the bundle');
  if (o.attestd_result !== 'bundle/v1') invalid('not an attestd result bundle (attestd_result is not "bundle/v1")');
  only(o, 'the bundle', ['attestd_result', 'ear', 'session_public_key', 'nonce', 'quote', 'ak_certificate', 'ek_certificates']);
  if (typeof o.ear !== 'string' || o.ear.length > 64 * 1024 || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(o.ear)) invalid('ear: expected a compact JWS');
  const q = obj(o.quote, 'quote');
  only(q, 'quote', ['attest', 'signature', 'ak_public', 'pcrs']);
  if (!Array.isArray(o.ek_certificates) || o.ek_certificates.length > 4) invalid('ek_certificates: expected at most 4');
  return {
    ear: o.ear as string,
    sessionPublicKey: b64(o.session_public_key, 'session_public_key', 32, 32),
    nonce: b64(o.nonce, 'nonce', 8, 64),
    quote: { attest: b64(q.attest, 'quote.attest', 1, 2048), signature: b64(q.signature, 'quote.signature', 1, 1024),
      akPublic: b64(q.ak_public, 'quote.ak_public', 1, 1024), banks: banks(q.pcrs) },
    akCertificate: o.ak_certificate === undefined ? undefined : b64(o.ak_certificate, 'ak_certificate', 1, 16 * 1024),
    ekCertificates: (o.ek_certificates as unknown[]).map((c, n) => b64(c, `ek_certificates[${n}]`, 1, 16 * 1024)),
  };
}
