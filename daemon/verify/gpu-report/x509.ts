/**
 * X.509 certificates as NVIDIA's device-identity and RIM-signing PKIs issue them: ECDSA
 * P-384 keys, signed with ecdsa-with-SHA384. Parsed with the bounded DER reader so names
 * compare byte for byte and the DICE extension is reachable. Parsing checks shape only;
 * chain.ts checks signatures, names, CA flags and validity.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { AttestdError, type ErrorCode } from '../../base/errors.js';
import { Der, TAG, type DerNode } from '../der.js';

const OID = {
  ECDSA_SHA384: '1.2.840.10045.4.3.3',
  COMMON_NAME: '2.5.4.3',
  BASIC_CONSTRAINTS: '2.5.29.19',
  KEY_USAGE: '2.5.29.15',
} as const;

/** The device and RIM certificates are under 1 KiB; the cap keeps hostile input cheap. */
export const MAX_CERT_BYTES = 16 * 1024;
const MAX_PEM_BYTES = 256 * 1024;
export const MAX_CHAIN_CERTS = 8;

export interface Certificate {
  der: Buffer;
  /** TBSCertificate, tag and length included: the signed bytes. */
  tbs: Buffer;
  /** DER ECDSA-Sig-Value. */
  signature: Buffer;
  serialHex: string;
  issuer: Buffer;
  subject: Buffer;
  /** Subject common name, for messages and output only. */
  commonName: string;
  notBefore: Date;
  notAfter: Date;
  spki: Buffer;
  publicKey: KeyObject;
  /** extnValue contents by OID. */
  extensions: Map<string, Buffer>;
  /** OIDs of the extensions marked critical. */
  critical: Set<string>;
  isCa: boolean;
  /** pathLenConstraint of basicConstraints, when given. */
  pathLen: number | undefined;
  /** keyUsage bits: bit 0 digitalSignature ... bit 5 keyCertSign; undefined when absent. */
  keyUsage: number | undefined;
}

function commonNameOf(d: Der<Buffer>, name: DerNode): string {
  for (const rdn of d.children(name)) {
    for (const atv of d.children(rdn)) {
      const [type, value] = d.children(atv);
      if (type && value && d.oid(type) === OID.COMMON_NAME) return d.content(value).toString('utf8').slice(0, 128);
    }
  }
  return '';
}

function parseBasicConstraints(value: Buffer, code: ErrorCode): { isCa: boolean; pathLen: number | undefined } {
  const d: Der<Buffer> = new Der(value, code);
  const seq = d.expect(d.read(0), TAG.SEQUENCE, 'basicConstraints');
  if (seq.end !== value.length) d.fail('basicConstraints has trailing bytes');
  let isCa = false;
  let pathLen: number | undefined;
  for (const item of d.children(seq)) {
    if (item.tag === TAG.BOOLEAN) isCa = d.boolean(item);
    else if (item.tag === TAG.INTEGER) pathLen = d.smallUint(item);
    else d.fail('basicConstraints holds an unexpected element');
  }
  return { isCa, pathLen };
}

function parseKeyUsage(value: Buffer, code: ErrorCode): number {
  const d: Der<Buffer> = new Der(value, code);
  const bits = d.bitString(d.read(0));
  // Bit 0 (digitalSignature) is the most significant bit of the first byte.
  let out = 0;
  for (let i = 0; i < Math.min(bits.length, 2) * 8; i++) {
    if (((bits[i >> 3] ?? 0) >> (7 - (i & 7))) & 1) out |= 1 << i;
  }
  return out;
}

export function parseCertificate(input: Uint8Array, code: ErrorCode): Certificate {
  if (input.length > MAX_CERT_BYTES) throw new AttestdError(code, `a certificate is ${input.length} bytes, over ${MAX_CERT_BYTES}`);
  const der = Buffer.from(input);
  const d: Der<Buffer> = new Der(der, code);
  const top = d.expect(d.read(0), TAG.SEQUENCE, 'Certificate');
  if (top.end !== der.length) d.fail('the certificate has trailing bytes');
  const [tbsNode, algNode, sigNode, ...extra] = d.children(top);
  if (!tbsNode || !algNode || !sigNode || extra.length > 0) d.fail('a certificate is not three elements');
  const [algOid] = d.children(d.expect(algNode, TAG.SEQUENCE, 'signatureAlgorithm'));
  if (!algOid || d.oid(algOid) !== OID.ECDSA_SHA384) d.fail('the certificate is not signed with ecdsa-with-SHA384');

  const tbs = d.children(d.expect(tbsNode, TAG.SEQUENCE, 'TBSCertificate'));
  let i = 0;
  if (tbs[0]?.tag === 0xa0) {
    const [version] = d.children(tbs[0]);
    if (!version || d.smallUint(version) !== 2) d.fail('the certificate is not X.509 v3');
    i = 1;
  }
  const [serial, innerAlg, issuer, validity, subject, spki] = tbs.slice(i, i + 6);
  if (!serial || !innerAlg || !issuer || !validity || !subject || !spki) d.fail('TBSCertificate is too short');
  const [innerOid] = d.children(d.expect(innerAlg, TAG.SEQUENCE, 'TBS signature'));
  if (!innerOid || d.oid(innerOid) !== OID.ECDSA_SHA384) d.fail('the inner and outer signature algorithms differ');
  const [notBefore, notAfter] = d.children(d.expect(validity, TAG.SEQUENCE, 'validity'));
  if (!notBefore || !notAfter) d.fail('validity is incomplete');
  d.expect(serial, TAG.INTEGER, 'serialNumber');
  d.expect(issuer, TAG.SEQUENCE, 'issuer');
  d.expect(subject, TAG.SEQUENCE, 'subject');
  d.expect(spki, TAG.SEQUENCE, 'subjectPublicKeyInfo');

  const extensions = new Map<string, Buffer>();
  const critical = new Set<string>();
  for (const node of tbs.slice(i + 6)) {
    if (node.tag !== 0xa3) continue; // issuer/subject unique ids: never used by NVIDIA, ignored
    const [list] = d.children(node);
    for (const ext of d.children(d.expect(list, TAG.SEQUENCE, 'extensions'))) {
      const parts = d.children(d.expect(ext, TAG.SEQUENCE, 'extension'));
      const oid = d.oid(parts[0] ?? d.fail('an extension has no OID'));
      const value = parts[parts.length - 1];
      if (parts.length < 2 || parts.length > 3 || value?.tag !== TAG.OCTET_STRING) d.fail(`extension ${oid} is malformed`);
      if (extensions.has(oid)) d.fail(`extension ${oid} appears twice`);
      extensions.set(oid, Buffer.from(d.content(value)));
      if (parts.length === 3 && parts[1] && d.boolean(parts[1])) critical.add(oid);
    }
  }
  const bc = extensions.get(OID.BASIC_CONSTRAINTS);
  const { isCa, pathLen } = bc ? parseBasicConstraints(bc, code) : { isCa: false, pathLen: undefined };
  const ku = extensions.get(OID.KEY_USAGE);

  const spkiDer = Buffer.from(d.raw(spki));
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
  } catch (err) {
    throw new AttestdError(code, 'the certificate public key does not decode', { cause: err });
  }
  if (publicKey.asymmetricKeyType !== 'ec' || publicKey.asymmetricKeyDetails?.namedCurve !== 'secp384r1') {
    throw new AttestdError(code, 'the certificate key is not ECDSA P-384');
  }
  const serialBytes = d.content(serial);
  // A leading zero only keeps a DER INTEGER positive; it is not part of the serial.
  const serialHex = (serialBytes.length > 1 && serialBytes[0] === 0 ? serialBytes.subarray(1) : serialBytes).toString('hex');
  return {
    der,
    tbs: Buffer.from(d.raw(tbsNode)),
    // Unused bits in the signature would be a second encoding of the same certificate.
    signature: Buffer.from(d.bitString(sigNode, true)),
    serialHex,
    issuer: Buffer.from(d.raw(issuer)),
    subject: Buffer.from(d.raw(subject)),
    commonName: commonNameOf(d, subject),
    notBefore: d.time(notBefore),
    notAfter: d.time(notAfter),
    spki: spkiDer,
    publicKey,
    extensions,
    critical,
    isCa,
    pathLen,
    keyUsage: ku ? parseKeyUsage(ku, code) : undefined,
  };
}

export function spkiSha256(cert: Certificate): string {
  return createHash('sha256').update(cert.spki).digest('hex');
}

/** The DER certificates of a PEM bundle, in order; at most `max`. */
export function pemCertificates(pem: string | Uint8Array, code: ErrorCode, max = MAX_CHAIN_CERTS): Buffer[] {
  const text = typeof pem === 'string' ? pem : Buffer.from(pem).toString('latin1');
  if (text.length > MAX_PEM_BYTES) throw new AttestdError(code, `the PEM input is over ${MAX_PEM_BYTES} bytes`);
  const out: Buffer[] = [];
  const begin = '-----BEGIN CERTIFICATE-----';
  const end = '-----END CERTIFICATE-----';
  for (let pos = text.indexOf(begin); pos >= 0; pos = text.indexOf(begin, pos)) {
    const stop = text.indexOf(end, pos);
    if (stop < 0) throw new AttestdError(code, 'a PEM certificate has no END line');
    if (out.length >= max) throw new AttestdError(code, `more than ${max} certificates`);
    const body = text.slice(pos + begin.length, stop).replace(/[\r\n\t ]/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) throw new AttestdError(code, 'a PEM certificate is not base64');
    out.push(Buffer.from(body, 'base64'));
    pos = stop + end.length;
  }
  return out;
}
