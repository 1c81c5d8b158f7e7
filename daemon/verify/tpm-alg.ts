/**
 * TPM 2.0 algorithm identifiers (TPM 2.0 Part 2, TPM_ALG_ID and TPM_ECC_CURVE) and the
 * hash algorithms this verifier accepts. Identifiers come from untrusted structures, so
 * every lookup refuses what it does not know rather than guessing.
 */
import { AttestdError } from '../base/errors.js';

export type HashAlg = 'sha1' | 'sha256' | 'sha384' | 'sha512';

export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  MGF1: 0x0007,
  KEYEDHASH: 0x0008,
  XOR: 0x000a,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  SM4: 0x0013,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECDAA: 0x001a,
  SM2: 0x001b,
  ECSCHNORR: 0x001c,
  ECMQV: 0x001d,
  KDF1_SP800_56A: 0x0020,
  KDF2: 0x0021,
  KDF1_SP800_108: 0x0022,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CAMELLIA: 0x0026,
  CTR: 0x0040,
  OFB: 0x0041,
  CBC: 0x0042,
  CFB: 0x0043,
  ECB: 0x0044,
} as const;

export const TPM_ECC_CURVE = {
  NIST_P256: 0x0003,
  NIST_P384: 0x0004,
} as const;

/** Curves whose points we can turn into a node:crypto key, with their coordinate size. */
export type EccCurve = 'P-256' | 'P-384';

const HASH_BY_ID: ReadonlyMap<number, HashAlg> = new Map([
  [TPM_ALG.SHA1, 'sha1'],
  [TPM_ALG.SHA256, 'sha256'],
  [TPM_ALG.SHA384, 'sha384'],
  [TPM_ALG.SHA512, 'sha512'],
]);

const ID_BY_HASH: Readonly<Record<HashAlg, number>> = {
  sha1: TPM_ALG.SHA1,
  sha256: TPM_ALG.SHA256,
  sha384: TPM_ALG.SHA384,
  sha512: TPM_ALG.SHA512,
};

const DIGEST_SIZE: Readonly<Record<HashAlg, number>> = {
  sha1: 20,
  sha256: 32,
  sha384: 48,
  sha512: 64,
};

/** The hash named by a TPM_ALG_ID; TPM_ALG_NULL and non-hash ids are refused. */
export function hashAlgFromId(id: number): HashAlg {
  const alg = HASH_BY_ID.get(id);
  if (alg === undefined) {
    throw new AttestdError('QUOTE_UNSUPPORTED_ALGORITHM', `unsupported hash algorithm 0x${hex16(id)}`);
  }
  return alg;
}

export function hashAlgId(alg: HashAlg): number {
  return ID_BY_HASH[alg];
}

export function digestSize(alg: HashAlg): number {
  return DIGEST_SIZE[alg];
}

export function isHashAlg(value: unknown): value is HashAlg {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(DIGEST_SIZE, value);
}

export function eccCurveFromId(id: number): EccCurve {
  if (id === TPM_ECC_CURVE.NIST_P256) return 'P-256';
  if (id === TPM_ECC_CURVE.NIST_P384) return 'P-384';
  throw new AttestdError('QUOTE_UNSUPPORTED_ALGORITHM', `unsupported ECC curve 0x${hex16(id)}`);
}

export function eccCurveId(curve: EccCurve): number {
  return curve === 'P-256' ? TPM_ECC_CURVE.NIST_P256 : TPM_ECC_CURVE.NIST_P384;
}

/** Size in bytes of one coordinate (and of r and s in a signature) on the curve. */
export function eccCoordinateSize(curve: EccCurve): number {
  return curve === 'P-256' ? 32 : 48;
}

export function hex16(id: number): string {
  return id.toString(16).padStart(4, '0');
}
