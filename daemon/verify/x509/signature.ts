/**
 * Signature algorithms of certificates and CRLs, and checking a signature with node:crypto,
 * synchronously, over the exact signed bytes. An AlgorithmIdentifier becomes a scheme once, at
 * parse; which schemes a chain accepts is its verifier's policy (AMD: RSASSA-PSS SHA-384 salt
 * 48; Intel: ECDSA SHA-256; NVIDIA: ECDSA SHA-384; TPM vendors: whatever OpenSSL would verify,
 * MD5 excepted).
 */
import { constants, verify, type KeyObject } from 'node:crypto';
import { Asn1Reader, TAG, ctx, type Asn1Node } from './asn1.js';

export const SIG_OID = {
  ECDSA_SHA1: '1.2.840.10045.4.1',
  ECDSA_SHA224: '1.2.840.10045.4.3.1',
  ECDSA_SHA256: '1.2.840.10045.4.3.2',
  ECDSA_SHA384: '1.2.840.10045.4.3.3',
  ECDSA_SHA512: '1.2.840.10045.4.3.4',
  RSA_SHA1: '1.2.840.113549.1.1.5',
  RSA_SHA256: '1.2.840.113549.1.1.11',
  RSA_SHA384: '1.2.840.113549.1.1.12',
  RSA_SHA512: '1.2.840.113549.1.1.13',
  RSA_SHA224: '1.2.840.113549.1.1.14',
  RSASSA_PSS: '1.2.840.113549.1.1.10',
  ED25519: '1.3.101.112',
  ED448: '1.3.101.113',
} as const;

const MGF1 = '1.2.840.113549.1.1.8';

export type HashName = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

const HASH_OID: Readonly<Record<string, HashName>> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

const ECDSA: Readonly<Record<string, HashName>> = {
  [SIG_OID.ECDSA_SHA1]: 'sha1', [SIG_OID.ECDSA_SHA224]: 'sha224', [SIG_OID.ECDSA_SHA256]: 'sha256',
  [SIG_OID.ECDSA_SHA384]: 'sha384', [SIG_OID.ECDSA_SHA512]: 'sha512',
};
const RSA_PKCS1: Readonly<Record<string, HashName>> = {
  [SIG_OID.RSA_SHA1]: 'sha1', [SIG_OID.RSA_SHA224]: 'sha224', [SIG_OID.RSA_SHA256]: 'sha256',
  [SIG_OID.RSA_SHA384]: 'sha384', [SIG_OID.RSA_SHA512]: 'sha512',
};

export type SignatureScheme =
  | { kind: 'ecdsa'; hash: HashName }
  | { kind: 'rsa-pkcs1'; hash: HashName }
  | { kind: 'rsa-pss'; hash: HashName; mgfHash: HashName; saltLength: number }
  | { kind: 'eddsa'; curve: 'ed25519' | 'ed448' }
  | { kind: 'unsupported'; why: string };

/** Absent, or NULL: the two spellings of "no parameters" issuers use. */
function noParameters(r: Asn1Reader, params: Asn1Node | undefined): boolean {
  return params === undefined || (r.tagOf(params) === TAG.NULL && r.content(params).length === 0);
}

/** A hash AlgorithmIdentifier inside RSASSA-PSS parameters. */
function hashOf(r: Asn1Reader, algId: Asn1Node, what: string): HashName {
  const [oid, params, ...more] = r.children(r.expect(algId, TAG.SEQUENCE, what), what, 2);
  if (!oid || more.length > 0 || !noParameters(r, params)) r.fail(`${what} is malformed`);
  const hash = HASH_OID[r.oid(oid, what)];
  if (!hash) r.fail(`${what} is not a supported hash`);
  return hash;
}

/**
 * RFC 4055 RSASSA-PSS-params: [0] hash, [1] MGF1 with its hash, [2] salt length, [3] trailer
 * 1, each in order and each optional. The defaults (SHA-1, salt 20) apply when a field is
 * absent; a field spelled out with its default value is accepted, as AMD's certificates spell
 * out the trailer field.
 */
function pssScheme(params: Asn1Node): SignatureScheme {
  const r: Asn1Reader = new Asn1Reader('INVALID_ARGUMENT');
  const out = { kind: 'rsa-pss' as const, hash: 'sha1' as HashName, mgfHash: 'sha1' as HashName, saltLength: 20 };
  let last = -1;
  for (const field of r.children(r.expect(params, TAG.SEQUENCE, 'RSASSA-PSS parameters'), 'RSASSA-PSS parameters', 4)) {
    const n = r.tagOf(field) - ctx(0);
    if (n < 0 || n > 3 || n <= last) r.fail('RSASSA-PSS parameters hold an unknown or repeated field');
    last = n;
    const [inner, extra] = r.children(field, 'RSASSA-PSS parameter', 1);
    if (!inner || extra) r.fail('an RSASSA-PSS parameter is malformed');
    if (n === 0) {
      out.hash = hashOf(r, inner, 'the RSASSA-PSS hash');
    } else if (n === 1) {
      const [mgf, mgfParams, more] = r.children(r.expect(inner, TAG.SEQUENCE, 'mask generation'), 'mask generation', 2);
      if (!mgf || !mgfParams || more || r.oid(mgf) !== MGF1) r.fail('the mask generation function is not MGF1');
      out.mgfHash = hashOf(r, mgfParams, 'the MGF1 hash');
    } else if (n === 2) {
      out.saltLength = r.smallUint(inner, TAG.INTEGER, 'the salt length');
    } else if (r.smallUint(inner, TAG.INTEGER, 'the trailer field') !== 1) {
      r.fail('the RSASSA-PSS trailer field is not 1');
    }
  }
  return out;
}

/**
 * The scheme of an AlgorithmIdentifier. Throws `r`'s code only when the identifier itself does
 * not decode; an algorithm or parameters this code does not support make an "unsupported"
 * scheme, which verifies nothing.
 */
/**
 * The three parts every signed X.509 structure (certificate, CRL) is made of: the signed
 * body, the outer AlgorithmIdentifier and the signature BIT STRING's bytes. `what` names the
 * structure and `signatureName` its signature in failures. Unused bits in the signature would
 * be a second encoding of the same structure, so any is refused.
 */
export function signedParts(r: Asn1Reader, node: Asn1Node, what: string, signatureName: string): { tbs: Asn1Node; alg: Asn1Node; signature: Buffer } {
  const [tbs, alg, sigNode, ...extra] = r.children(node, what, 3);
  if (!tbs || !alg || !sigNode || extra.length > 0) r.fail(`${what} is not three elements`);
  const sig = r.content(r.expect(sigNode, TAG.BIT_STRING, signatureName));
  if (sig.length === 0 || sig[0] !== 0) r.fail(`${signatureName} BIT STRING has a bad unused-bits count`);
  return { tbs, alg, signature: sig.subarray(1) };
}

export function signatureScheme(r: Asn1Reader, algId: Asn1Node): SignatureScheme {
  const [oidNode, params, ...more] = r.children(algId, 'signature algorithm', 2);
  if (!oidNode || more.length > 0) return { kind: 'unsupported', why: 'the signature algorithm is malformed' };
  const oid = r.oid(oidNode, 'signature algorithm');
  if (ECDSA[oid] && noParameters(r, params)) return { kind: 'ecdsa', hash: ECDSA[oid] };
  if (RSA_PKCS1[oid] && noParameters(r, params)) return { kind: 'rsa-pkcs1', hash: RSA_PKCS1[oid] };
  if ((oid === SIG_OID.ED25519 || oid === SIG_OID.ED448) && params === undefined) {
    return { kind: 'eddsa', curve: oid === SIG_OID.ED25519 ? 'ed25519' : 'ed448' };
  }
  if (oid === SIG_OID.RSASSA_PSS) {
    if (!params) return { kind: 'unsupported', why: 'RSASSA-PSS without parameters' };
    try {
      return pssScheme(params);
    } catch (err) {
      return { kind: 'unsupported', why: (err as Error).message };
    }
  }
  return { kind: 'unsupported', why: `signature algorithm ${oid} with these parameters is not supported` };
}

/**
 * Whether `signature` over `data` verifies with `key` under `scheme`. False, never an
 * exception, for a key of the wrong type or a signature that does not decode.
 */
export function verifySignature(scheme: SignatureScheme, data: Uint8Array, signature: Uint8Array, key: KeyObject | undefined): boolean {
  if (!key) return false;
  const type = key.asymmetricKeyType;
  try {
    switch (scheme.kind) {
      case 'ecdsa':
        return type === 'ec' && verify(scheme.hash, data, { key, dsaEncoding: 'der' }, signature);
      case 'rsa-pkcs1':
        return type === 'rsa' && verify(scheme.hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
      case 'rsa-pss':
        // node:crypto takes the MGF1 hash from the digest; other pairings are not verifiable here.
        return (type === 'rsa' || type === 'rsa-pss') && scheme.mgfHash === scheme.hash &&
          verify(scheme.hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: scheme.saltLength }, signature);
      case 'eddsa':
        return type === scheme.curve && verify(null, data, key, signature);
      default:
        return false;
    }
  } catch {
    return false;
  }
}

/** The key type a scheme's signatures are made with, as node:crypto names it. */
export function keyTypesOf(scheme: SignatureScheme): readonly string[] {
  switch (scheme.kind) {
    case 'ecdsa': return ['ec'];
    case 'rsa-pkcs1': return ['rsa'];
    case 'rsa-pss': return ['rsa', 'rsa-pss'];
    case 'eddsa': return [scheme.curve];
    default: return [];
  }
}
