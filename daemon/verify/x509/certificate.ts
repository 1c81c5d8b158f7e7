/**
 * An X.509 certificate, decoded with @peculiar/asn1-x509 and kept by the SHA-256 of its DER:
 * the raw pieces a chain check needs (the signed TBSCertificate, issuer and subject as
 * encoded, the SubjectPublicKeyInfo), the decoded ones (validity, extensions, constraints),
 * the public key already imported, and the signature scheme already read. Parsing checks the
 * shape only; signatures, names, CA flags and validity are for chain.ts and the verifiers,
 * which also hold each PKI's profile (algorithms, key types, naming).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Name } from '@peculiar/asn1-x509';
import type { ErrorCode } from '../../base/errors.js';
import { Asn1Reader, TAG, ctx, x509Schemas } from './asn1.js';
import { DigestCache, sha256Hex } from './cache.js';
import { readExtensions } from './extensions.js';
import { commonNames } from './name.js';
import { signatureScheme, signedParts, type SignatureScheme } from './signature.js';

/** Every certificate the verifiers read is under 2 KiB; the cap keeps hostile input cheap. */
export const MAX_CERT_BYTES = 16 * 1024;
/** Serial numbers: RFC 5280 allows 20 octets; the slack tolerates issuers that overshoot. */
const MAX_SERIAL_BYTES = 64;
/** Roots, intermediates and the leaves of a few hosts' worth of devices. */
const CACHE_CAPACITY = 512;

export interface Certificate {
  /** The certificate, DER (a private copy). */
  readonly der: Buffer;
  /** SHA-256 of `der`, hex: its fingerprint and cache key. */
  readonly sha256: string;
  /** 1, 2 or 3. */
  readonly version: number;
  /** TBSCertificate, tag and length included: the signed bytes. */
  readonly tbs: Buffer;
  /** OID of the signature algorithm. */
  readonly signatureAlgorithm: string;
  readonly scheme: SignatureScheme;
  /** The signature BIT STRING's bytes. */
  readonly signature: Buffer;
  /** The serial number INTEGER's content, as encoded. */
  readonly serial: Buffer;
  /** The serial number's magnitude, lowercase hex without leading zero bytes (as CRLs list it). */
  readonly serialHex: string;
  /** Issuer and subject Name, as encoded (tag and length included). */
  readonly issuer: Buffer;
  readonly subject: Buffer;
  readonly issuerName: Name;
  readonly subjectName: Name;
  /** The subject's first common name, when it has one. */
  readonly commonName: string | undefined;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SubjectPublicKeyInfo, DER. */
  readonly spki: Buffer;
  /** The subject key, or undefined when node:crypto cannot import it. */
  readonly publicKey: KeyObject | undefined;
  /** extnValue contents by OID. */
  readonly extensions: ReadonlyMap<string, Buffer>;
  /** OIDs of the extensions marked critical. */
  readonly critical: ReadonlySet<string>;
  /** cA of basicConstraints. */
  readonly isCa: boolean;
  /** pathLenConstraint of basicConstraints, when given. */
  readonly pathLen: number | undefined;
  /** keyUsage bits (extensions.ts KEY_USAGE); undefined when absent. */
  readonly keyUsage: number | undefined;
  /**
   * Whether `der` is the one DER encoding of what it holds; undefined until a "der" parse has
   * asked (the check costs as much as the decode, and "ber" parses do not need it).
   */
  readonly canonical: boolean | undefined;
}

export interface ParseOptions {
  /**
   * "der" (the default): the bytes must be the one DER encoding of the certificate, as AMD,
   * Intel and NVIDIA issue them. "ber": what OpenSSL reads passes too, for TPM vendor
   * certificates in the wild, some of which spell out DEFAULT values.
   */
  encoding?: 'der' | 'ber';
  /** Refuse larger input; default MAX_CERT_BYTES. */
  maxBytes?: number;
}

const cache = new DigestCache<Certificate>(CACHE_CAPACITY);

/** Magnitude of an INTEGER's content as lowercase hex, without leading zero bytes. */
export function magnitudeHex(content: Buffer): string {
  let i = 0;
  while (i < content.length - 1 && content[i] === 0) i++;
  return content.subarray(i).toString('hex');
}

function importKey(spki: Buffer): KeyObject | undefined {
  try {
    return createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    return undefined;
  }
}

function decode(der: Buffer, digest: string, r: Asn1Reader, checkCanonical: boolean): Certificate {
  const { value, node } = r.schema(der, x509Schemas().Certificate, 'the certificate', 'ber');
  const { tbs: tbsNode, alg: algNode, signature } = signedParts(r, node, 'the certificate', 'the signature');

  const t = value.tbsCertificate;
  const fields = r.children(tbsNode, 'TBSCertificate', 10);
  const at = fields[0] && r.tagOf(fields[0]) === ctx(0) ? 1 : 0;
  const present = at + 6 + [t.issuerUniqueID, t.subjectUniqueID, t.extensions].filter((x) => x !== undefined).length;
  if (fields.length !== present) r.fail('TBSCertificate holds fields X.509 does not define');
  const [serialNode, innerAlg, issuerNode, validityNode, subjectNode, spkiNode] = fields.slice(at, at + 6);
  if (!serialNode || !innerAlg || !issuerNode || !validityNode || !subjectNode || !spkiNode) r.fail('TBSCertificate is too short');
  if (t.version > 2) r.fail(`X.509 version ${t.version + 1} is not defined`);
  if (!r.raw(innerAlg).equals(r.raw(algNode))) r.fail('the inner and outer signature algorithms differ');
  const serial = r.content(r.expect(serialNode, TAG.INTEGER, 'serialNumber'));
  if (serial.length === 0 || serial.length > MAX_SERIAL_BYTES) r.fail('serialNumber has a bad length');
  const [notBefore, notAfter] = r.children(validityNode, 'validity', 2);
  if (!notBefore || !notAfter) r.fail('validity needs two times');

  const spki = r.raw(spkiNode);
  const cn = commonNames(t.subject);
  return Object.freeze({
    der,
    sha256: digest,
    version: t.version + 1,
    tbs: r.raw(tbsNode),
    signatureAlgorithm: value.signatureAlgorithm.algorithm,
    scheme: signatureScheme(r, algNode),
    signature,
    serial,
    serialHex: magnitudeHex(serial),
    issuer: r.raw(issuerNode),
    subject: r.raw(subjectNode),
    issuerName: t.issuer,
    subjectName: t.subject,
    commonName: cn[0],
    notBefore: r.time(notBefore, 'notBefore'),
    notAfter: r.time(notAfter, 'notAfter'),
    spki,
    publicKey: importKey(spki),
    ...readExtensions(r, t.extensions),
    canonical: checkCanonical ? r.reencodes(value, der) : undefined,
  });
}

/**
 * Parses one certificate, DER, which must be exactly the input. Throws AttestdError(`code`)
 * when it does not parse, is larger than the limit, or (by default) is not DER. A certificate
 * seen before is not decoded again.
 */
export function parseCertificate(input: Uint8Array, code: ErrorCode, options: ParseOptions = {}): Certificate {
  const r: Asn1Reader = new Asn1Reader(code);
  if (!(input instanceof Uint8Array)) r.fail('a certificate is not bytes');
  const max = options.maxBytes ?? MAX_CERT_BYTES;
  if (input.length > max) r.fail(`a certificate is ${input.length} bytes, over ${max}`);
  const der = options.encoding !== 'ber';
  const digest = sha256Hex(input);
  let cert = cache.get(digest);
  if (!cert || (der && cert.canonical === undefined)) {
    // A copy: the caller's buffer may change after this returns, the cached value may not.
    cert = decode(Buffer.from(input), digest, r, der);
    cache.set(digest, cert);
  }
  if (der && !cert.canonical) r.fail('the certificate is not in DER form, or holds fields its structure does not have');
  return cert;
}

/** SHA-256 of the SubjectPublicKeyInfo, hex: how roots are pinned. */
export function spkiSha256(cert: Pick<Certificate, 'spki'>): string {
  return sha256Hex(cert.spki);
}

/** How many certificates are cached (for tests and diagnostics). */
export function cachedCertificates(): number {
  return cache.size;
}

/** Forgets every parsed certificate: for measuring a first parse, and for tests. */
export function clearCertificateCache(): void {
  cache.clear();
}
