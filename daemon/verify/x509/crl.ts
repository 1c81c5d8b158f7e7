/**
 * A certificate revocation list (RFC 5280 section 5), decoded with @peculiar/asn1-x509, kept
 * by the SHA-256 of its DER like certificates are. Parsing checks the shape; whether the CRL
 * is its issuer's (name and signature), fresh, and lists a certificate is for the verifier.
 */
import type { KeyObject } from 'node:crypto';
import type { Name } from '@peculiar/asn1-x509';
import type { ErrorCode } from '../../base/errors.js';
import { Asn1Reader, TAG, x509Schemas } from './asn1.js';
import { DigestCache, sha256Hex } from './cache.js';
import { magnitudeHex } from './certificate.js';
import { commonNames } from './name.js';
import { signatureScheme, signedParts, verifySignature, type SignatureScheme } from './signature.js';

/** Intel's CRLs grow with every revoked platform; these bounds are far above today's. */
export const MAX_CRL_BYTES = 1024 * 1024;
export const MAX_REVOKED = 4096;
const CACHE_CAPACITY = 16;

export interface Crl {
  readonly der: Buffer;
  readonly sha256: string;
  /** TBSCertList, tag and length included: the signed bytes. */
  readonly tbs: Buffer;
  readonly signatureAlgorithm: string;
  readonly scheme: SignatureScheme;
  readonly signature: Buffer;
  /** Issuer Name as encoded. */
  readonly issuer: Buffer;
  readonly issuerName: Name;
  readonly issuerCommonName: string | undefined;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  /** Serial numbers listed, as magnitudes in lowercase hex (Certificate.serialHex). */
  readonly revokedSerials: ReadonlySet<string>;
}

const cache = new DigestCache<Crl>(CACHE_CAPACITY);

function decode(der: Buffer, digest: string, r: Asn1Reader): Crl {
  const { value, node } = r.schema(der, x509Schemas().CertificateList, 'the CRL');
  const { tbs: tbsNode, alg: algNode, signature } = signedParts(r, node, 'the CRL', 'the CRL signature');
  const t = value.tbsCertList;
  const fields = r.children(tbsNode, 'TBSCertList', 7);
  const at = fields[0] && r.tagOf(fields[0]) === TAG.INTEGER ? 1 : 0;
  const [innerAlg, issuerNode, thisNode, nextNode] = fields.slice(at, at + 4);
  if (!innerAlg || !issuerNode || !thisNode) r.fail('TBSCertList is too short');
  if (!r.raw(innerAlg).equals(r.raw(algNode))) r.fail('the inner and outer CRL signature algorithms differ');
  const revoked = t.revokedCertificates ?? [];
  if (revoked.length > MAX_REVOKED) r.fail(`the CRL lists more than ${MAX_REVOKED} certificates`);
  const nextIsTime = nextNode !== undefined && t.nextUpdate !== undefined;
  return Object.freeze({
    der,
    sha256: digest,
    tbs: r.raw(tbsNode),
    signatureAlgorithm: value.signatureAlgorithm.algorithm,
    scheme: signatureScheme(r, algNode),
    signature,
    issuer: r.raw(issuerNode),
    issuerName: t.issuer,
    issuerCommonName: commonNames(t.issuer)[0],
    thisUpdate: r.time(thisNode, 'thisUpdate'),
    nextUpdate: nextIsTime ? r.time(nextNode, 'nextUpdate') : undefined,
    revokedSerials: new Set(revoked.map((e) => magnitudeHex(Buffer.from(e.userCertificate)))),
  });
}

/**
 * Parses one CRL, DER, which must be exactly the input and its one DER encoding. Throws
 * AttestdError(`code`) otherwise. A CRL seen before is not decoded again.
 */
export function parseCrl(input: Uint8Array, code: ErrorCode): Crl {
  const r: Asn1Reader = new Asn1Reader(code);
  if (!(input instanceof Uint8Array)) r.fail('a CRL is not bytes');
  if (input.length > MAX_CRL_BYTES) r.fail(`the CRL is ${input.length} bytes, over ${MAX_CRL_BYTES}`);
  const digest = sha256Hex(input);
  let crl = cache.get(digest);
  if (!crl) {
    crl = decode(Buffer.from(input), digest, r);
    cache.set(digest, crl);
  }
  return crl;
}

/**
 * Whether `der` is a CRL parsed before: lets a caller sorting DER files by content skip
 * trying a known CRL as a certificate first, which would decode it in vain every time.
 */
export function isKnownCrl(der: Uint8Array): boolean {
  return der.length <= MAX_CRL_BYTES && cache.get(sha256Hex(der)) !== undefined;
}

/** Whether `key` (the issuer's) signed the CRL. */
export function crlSignedBy(crl: Crl, key: KeyObject | undefined): boolean {
  return verifySignature(crl.scheme, crl.tbs, crl.signature, key);
}

/** Forgets every parsed CRL: for measuring a first parse, and for tests. */
export function clearCrlCache(): void {
  cache.clear();
}
