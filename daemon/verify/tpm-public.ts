/**
 * TPMT_PUBLIC (TPM 2.0 Part 2): the public area of a TPM key, turned into a node:crypto
 * public key together with the TPM name the key is known by. Only what an attestation key
 * can be is accepted: RSA (2048-4096 bits) and ECC on NIST P-256 or P-384. The bytes are
 * untrusted; sizes are checked against each field's maximum before anything is copied.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { AttestdError } from '../base/errors.js';
import {
  TPM_ALG,
  eccCoordinateSize,
  eccCurveFromId,
  hashAlgFromId,
  hashAlgId,
  hex16,
  type EccCurve,
  type HashAlg,
} from './tpm-alg.js';
import { TpmReader, TpmWriter, malformed } from './tpm-reader.js';

export const TPMA_OBJECT = {
  FIXED_TPM: 1 << 1,
  ST_CLEAR: 1 << 2,
  FIXED_PARENT: 1 << 4,
  SENSITIVE_DATA_ORIGIN: 1 << 5,
  USER_WITH_AUTH: 1 << 6,
  ADMIN_WITH_POLICY: 1 << 7,
  NO_DA: 1 << 10,
  ENCRYPTED_DUPLICATION: 1 << 11,
  RESTRICTED: 1 << 16,
  DECRYPT: 1 << 17,
  SIGN_ENCRYPT: 1 << 18,
} as const;

export type TpmSchemeName =
  | 'rsassa' | 'rsapss' | 'rsaes' | 'oaep'
  | 'ecdsa' | 'ecdaa' | 'sm2' | 'ecschnorr' | 'ecdh' | 'ecmqv';

/** The scheme fixed in a key's parameters; absent when the template says TPM_ALG_NULL. */
export interface TpmKeyScheme {
  alg: TpmSchemeName;
  /** Absent only for RSAES, which carries no hash. */
  hash?: HashAlg;
}

export interface TpmPublicKey {
  type: 'ecc' | 'rsa';
  nameAlg: HashAlg;
  objectAttributes: number;
  restricted: boolean;
  sign: boolean;
  key: KeyObject;
  /** nameAlg id (2 bytes) || H_nameAlg(publicArea). */
  name: Buffer;
  /** The TPMT_PUBLIC bytes. */
  publicArea: Buffer;
  /** The signing or decryption scheme fixed by the key, if any. */
  scheme?: TpmKeyScheme;
  /** ECC keys only. */
  curve?: EccCurve;
  /** The block cipher a storage key (an EK, a storage root key) protects its children with. */
  symmetric?: TpmSymmetric;
}

/** TPMT_SYM_DEF_OBJECT other than TPM_ALG_NULL: TPM_ALG ids of the cipher and mode, and key bits. */
export interface TpmSymmetric {
  alg: number;
  keyBits: number;
  mode: number;
}

/** sizeof(TPMU_HA): the largest digest, bounding authPolicy. */
const MAX_DIGEST = 64;
/** MAX_RSA_KEY_BYTES for 4096-bit keys. */
const MAX_RSA_KEY_BYTES = 512;
const RSA_KEY_BITS: ReadonlySet<number> = new Set([2048, 3072, 4096]);

const RSA_SCHEMES: ReadonlyMap<number, TpmSchemeName> = new Map([
  [TPM_ALG.RSASSA, 'rsassa'],
  [TPM_ALG.RSAPSS, 'rsapss'],
  [TPM_ALG.RSAES, 'rsaes'],
  [TPM_ALG.OAEP, 'oaep'],
]);
const ECC_SCHEMES: ReadonlyMap<number, TpmSchemeName> = new Map([
  [TPM_ALG.ECDSA, 'ecdsa'],
  [TPM_ALG.ECDAA, 'ecdaa'],
  [TPM_ALG.SM2, 'sm2'],
  [TPM_ALG.ECSCHNORR, 'ecschnorr'],
  [TPM_ALG.ECDH, 'ecdh'],
  [TPM_ALG.ECMQV, 'ecmqv'],
]);
const SYMMETRIC: ReadonlySet<number> = new Set([TPM_ALG.AES, TPM_ALG.SM4, TPM_ALG.CAMELLIA]);
const KDFS: ReadonlySet<number> = new Set([
  TPM_ALG.MGF1, TPM_ALG.KDF1_SP800_56A, TPM_ALG.KDF2, TPM_ALG.KDF1_SP800_108,
]);

/** Parses a TPMT_PUBLIC; the whole input must be the structure. */
export function parseTpmtPublic(bytes: Uint8Array): TpmPublicKey {
  const r = new TpmReader(bytes);
  const typeId = r.u16();
  const nameAlg = hashAlgFromId(r.u16());
  const objectAttributes = r.u32();
  r.tpm2b(MAX_DIGEST, 'authPolicy');
  let parsed: { key: KeyObject; scheme?: TpmKeyScheme; curve?: EccCurve; symmetric?: TpmSymmetric | undefined };
  let type: TpmPublicKey['type'];
  if (typeId === TPM_ALG.RSA) {
    type = 'rsa';
    parsed = readRsa(r);
  } else if (typeId === TPM_ALG.ECC) {
    type = 'ecc';
    parsed = readEcc(r);
  } else {
    throw new AttestdError('QUOTE_UNSUPPORTED_ALGORITHM', `unsupported key type 0x${hex16(typeId)}`);
  }
  r.end('TPMT_PUBLIC');
  const publicArea = Buffer.from(bytes);
  const name = Buffer.concat([
    new TpmWriter().u16(hashAlgId(nameAlg)).finish(),
    createHash(nameAlg).update(publicArea).digest(),
  ]);
  const out: TpmPublicKey = {
    type,
    nameAlg,
    objectAttributes,
    restricted: (objectAttributes & TPMA_OBJECT.RESTRICTED) !== 0,
    sign: (objectAttributes & TPMA_OBJECT.SIGN_ENCRYPT) !== 0,
    key: parsed.key,
    name,
    publicArea,
  };
  if (parsed.scheme) out.scheme = parsed.scheme;
  if (parsed.curve) out.curve = parsed.curve;
  if (parsed.symmetric) out.symmetric = parsed.symmetric;
  return out;
}

/** Parses a TPM2B_PUBLIC: a u16 size that must cover exactly the rest of the input. */
export function parseTpm2bPublic(bytes: Uint8Array): TpmPublicKey {
  const r = new TpmReader(bytes);
  const size = r.u16();
  if (size === 0 || size !== r.remaining) {
    malformed(`TPM2B_PUBLIC: size ${size} but ${r.remaining} bytes follow`);
  }
  return parseTpmtPublic(r.bytes(size, 'publicArea'));
}

export function encodeTpm2bPublic(pub: TpmPublicKey): Buffer {
  return new TpmWriter().tpm2b(pub.publicArea).finish();
}

function readRsa(r: TpmReader): { key: KeyObject; scheme?: TpmKeyScheme; symmetric?: TpmSymmetric | undefined } {
  const symmetric = readSymmetric(r);
  const scheme = readScheme(r, RSA_SCHEMES);
  const keyBits = r.u16();
  const rawExponent = r.u32();
  const n = r.tpm2b(MAX_RSA_KEY_BYTES, 'rsa unique');
  if (!RSA_KEY_BITS.has(keyBits)) {
    throw new AttestdError('QUOTE_UNSUPPORTED_ALGORITHM', `unsupported RSA key size ${keyBits}`);
  }
  if (n.length * 8 !== keyBits || ((n[0] ?? 0) & 0x80) === 0) {
    malformed(`RSA modulus of ${n.length} bytes does not have ${keyBits} bits`);
  }
  // The TPM writes 0 for the default exponent 2^16 + 1.
  const exponent = rawExponent === 0 ? 65537 : rawExponent;
  if (exponent < 3 || exponent % 2 === 0) malformed(`RSA exponent ${exponent} is not valid`);
  const e = new TpmWriter().u32(exponent).finish();
  const firstNonZero = e.findIndex((b) => b !== 0);
  const key = jwkKey({ kty: 'RSA', n: n.toString('base64url'), e: e.subarray(firstNonZero).toString('base64url') });
  return scheme ? { key, scheme, symmetric } : { key, symmetric };
}

function readEcc(r: TpmReader): { key: KeyObject; scheme?: TpmKeyScheme; curve: EccCurve; symmetric?: TpmSymmetric | undefined } {
  const symmetric = readSymmetric(r);
  const scheme = readScheme(r, ECC_SCHEMES);
  const curve = eccCurveFromId(r.u16());
  const kdf = r.u16();
  if (kdf !== TPM_ALG.NULL) {
    if (!KDFS.has(kdf)) throw new AttestdError('QUOTE_UNSUPPORTED_ALGORITHM', `unsupported KDF 0x${hex16(kdf)}`);
    hashAlgFromId(r.u16());
  }
  const size = eccCoordinateSize(curve);
  const x = leftPad(r.tpm2b(size, 'ecc x'), size);
  const y = leftPad(r.tpm2b(size, 'ecc y'), size);
  const key = jwkKey({ kty: 'EC', crv: curve, x: x.toString('base64url'), y: y.toString('base64url') });
  return scheme ? { key, scheme, curve, symmetric } : { key, curve, symmetric };
}

/** TPMT_SYM_DEF_OBJECT: a block cipher with key size and mode, or TPM_ALG_NULL alone. */
function readSymmetric(r: TpmReader): TpmSymmetric | undefined {
  const alg = r.u16();
  if (alg === TPM_ALG.NULL) return undefined;
  if (!SYMMETRIC.has(alg)) {
    throw new AttestdError('QUOTE_UNSUPPORTED_ALGORITHM', `unsupported symmetric algorithm 0x${hex16(alg)}`);
  }
  return { alg, keyBits: r.u16(), mode: r.u16() };
}

function readScheme(r: TpmReader, allowed: ReadonlyMap<number, TpmSchemeName>): TpmKeyScheme | undefined {
  const id = r.u16();
  if (id === TPM_ALG.NULL) return undefined;
  const alg = allowed.get(id);
  if (alg === undefined) throw new AttestdError('QUOTE_UNSUPPORTED_ALGORITHM', `unsupported key scheme 0x${hex16(id)}`);
  if (alg === 'rsaes') return { alg };
  const hash = hashAlgFromId(r.u16());
  if (alg === 'ecdaa') r.u16(); // count
  return { alg, hash };
}

function leftPad(v: Buffer, size: number): Buffer {
  return v.length === size ? v : Buffer.concat([Buffer.alloc(size - v.length), v]);
}

function jwkKey(jwk: Record<string, string>): KeyObject {
  try {
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch (err) {
    // OpenSSL refuses points off the curve and malformed moduli here.
    throw new AttestdError('QUOTE_MALFORMED', 'the public key is not a valid key', { cause: err });
  }
}
