/**
 * TPMT_SIGNATURE (TPM 2.0 Part 2) and its verification with node:crypto. The TPM signs the
 * digest of the signed bytes under the scheme's hash, so each verify below hashes `signed`
 * with that hash: ECDSA over r||s padded to the curve size, RSASSA-PKCS1-v1_5, and RSAPSS
 * with the salt length recovered from the signature (the TPM picks it).
 */
import { constants, verify as cryptoVerify } from 'node:crypto';
import { AttestdError } from '../base/errors.js';
import { TPM_ALG, eccCoordinateSize, hashAlgFromId, hex16, type HashAlg } from './tpm-alg.js';
import type { TpmPublicKey } from './tpm-public.js';
import { TpmReader } from './tpm-reader.js';

export interface TpmSignature {
  sigAlg: 'ecdsa' | 'rsassa' | 'rsapss';
  hash: HashAlg;
  /** ECDSA: r and s as the TPM sent them, big-endian. */
  r?: Buffer;
  s?: Buffer;
  /** RSA: the signature, as long as the modulus. */
  sig?: Buffer;
}

const MAX_RSA_KEY_BYTES = 512;
/** MAX_ECC_KEY_BYTES for the largest curve a TPM defines (P-521). */
const MAX_ECC_KEY_BYTES = 66;

/** Parses a TPMT_SIGNATURE; the whole input must be the structure. */
export function parseTpmtSignature(bytes: Uint8Array): TpmSignature {
  const r = new TpmReader(bytes);
  const alg = r.u16();
  let out: TpmSignature;
  if (alg === TPM_ALG.RSASSA || alg === TPM_ALG.RSAPSS) {
    const hash = hashAlgFromId(r.u16());
    const sig = r.tpm2b(MAX_RSA_KEY_BYTES, 'rsa signature');
    out = { sigAlg: alg === TPM_ALG.RSASSA ? 'rsassa' : 'rsapss', hash, sig };
  } else if (alg === TPM_ALG.ECDSA) {
    const hash = hashAlgFromId(r.u16());
    const sr = r.tpm2b(MAX_ECC_KEY_BYTES, 'ecdsa r');
    const ss = r.tpm2b(MAX_ECC_KEY_BYTES, 'ecdsa s');
    out = { sigAlg: 'ecdsa', hash, r: sr, s: ss };
  } else {
    throw new AttestdError('QUOTE_UNSUPPORTED_ALGORITHM', `unsupported signature algorithm 0x${hex16(alg)}`);
  }
  r.end('TPMT_SIGNATURE');
  return out;
}

/**
 * True only if `sig` is a valid signature by `key` over `signed`. A signature of a kind the
 * key cannot make, or with the wrong size, is simply not valid: false, never a throw.
 */
export function verifyTpmSignature(key: TpmPublicKey, signed: Uint8Array, sig: TpmSignature): boolean {
  if (sig.sigAlg === 'ecdsa') {
    if (key.type !== 'ecc' || !sig.r || !sig.s) return false;
    const size = curveSize(key);
    if (size === undefined) return false;
    const r = fixedLength(sig.r, size);
    const s = fixedLength(sig.s, size);
    if (!r || !s) return false;
    return safeVerify(() =>
      cryptoVerify(sig.hash, signed, { key: key.key, dsaEncoding: 'ieee-p1363' }, Buffer.concat([r, s])),
    );
  }
  if (key.type !== 'rsa' || !sig.sig) return false;
  const modulusBytes = (key.key.asymmetricKeyDetails?.modulusLength ?? 0) / 8;
  if (sig.sig.length !== modulusBytes) return false;
  const signature = sig.sig;
  if (sig.sigAlg === 'rsassa') {
    return safeVerify(() =>
      cryptoVerify(sig.hash, signed, { key: key.key, padding: constants.RSA_PKCS1_PADDING }, signature),
    );
  }
  return safeVerify(() =>
    cryptoVerify(
      sig.hash,
      signed,
      { key: key.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO },
      signature,
    ),
  );
}

function curveSize(key: TpmPublicKey): number | undefined {
  if (key.curve) return eccCoordinateSize(key.curve);
  const named = key.key.asymmetricKeyDetails?.namedCurve;
  if (named === 'prime256v1') return 32;
  if (named === 'secp384r1') return 48;
  return undefined;
}

/** r or s left-padded to the curve size; undefined if it is larger than the curve allows. */
function fixedLength(v: Buffer, size: number): Buffer | undefined {
  let start = 0;
  while (start < v.length - size && v[start] === 0) start++;
  const trimmed = v.subarray(start);
  if (trimmed.length > size) return undefined;
  return trimmed.length === size ? trimmed : Buffer.concat([Buffer.alloc(size - trimmed.length), trimmed]);
}

function safeVerify(run: () => boolean): boolean {
  try {
    return run();
  } catch {
    // OpenSSL raises on some malformed signatures instead of reporting them invalid.
    return false;
  }
}
