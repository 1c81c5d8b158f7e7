/**
 * PEM (RFC 7468) as certificate chains and CRLs arrive: KDS cert_chain files, the PCK chain in
 * a TDX quote, NVIDIA device chains, TPM vendor CA bundles. Hostile text: its size and the
 * number of blocks are bounded, and a block whose body is not base64 is refused rather than
 * decoded around (Buffer.from would skip what it does not understand).
 */
import { AttestdError, type ErrorCode } from '../../base/errors.js';

/** A vendor CA bundle is the largest PEM read here: a few hundred certificates at most. */
export const MAX_PEM_CHARS = 4 << 20;
const DEFAULT_MAX_BLOCKS = 8;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export interface PemOptions {
  /** At most this many blocks (default 8). */
  max?: number;
  /** At most this many characters of input (default MAX_PEM_CHARS). */
  maxChars?: number;
  /** Refuse text after the last block: for a chain that must be nothing else. */
  nothingAfter?: boolean;
}

function text(pem: string | Uint8Array): string {
  return typeof pem === 'string' ? pem : Buffer.from(pem.buffer, pem.byteOffset, pem.byteLength).toString('latin1');
}

/** The DER bodies of the `label` blocks ("CERTIFICATE", "X509 CRL") in `pem`, in order. */
export function pemBlocks(pem: string | Uint8Array, label: string, code: ErrorCode, options: PemOptions = {}): Buffer[] {
  const max = options.max ?? DEFAULT_MAX_BLOCKS;
  const maxChars = options.maxChars ?? MAX_PEM_CHARS;
  const fail = (why: string): never => {
    throw new AttestdError(code, why);
  };
  if (pem.length > maxChars) fail(`the PEM input is over ${maxChars} characters`);
  const s = text(pem);
  const begin = `-----BEGIN ${label}-----`;
  const end = `-----END ${label}-----`;
  const out: Buffer[] = [];
  let pos = 0;
  for (let at = s.indexOf(begin); at >= 0; at = s.indexOf(begin, pos)) {
    const stop = s.indexOf(end, at + begin.length);
    if (stop < 0) fail(`a PEM ${label} block has no END line`);
    if (out.length >= max) fail(`more than ${max} PEM ${label} blocks`);
    const body = s.slice(at + begin.length, stop).replace(/[\t\n\v\f\r ]/g, '');
    if (!BASE64.test(body) || body.length % 4 !== 0) fail(`a PEM ${label} block is not base64`);
    out.push(Buffer.from(body, 'base64'));
    pos = stop + end.length;
  }
  if (options.nothingAfter && s.slice(pos).trim() !== '') fail(`text after the last PEM ${label} block`);
  return out;
}

/** The certificates of a PEM chain or bundle, in order. */
export function pemCertificates(pem: string | Uint8Array, code: ErrorCode, options: PemOptions = {}): Buffer[] {
  return pemBlocks(pem, 'CERTIFICATE', code, options);
}

/** Whether `input` starts like PEM rather than DER (a BEGIN line within its first 64 bytes). */
export function looksLikePem(input: string | Uint8Array): boolean {
  return typeof input === 'string' || text(input.subarray(0, 64)).includes('-----BEGIN');
}
