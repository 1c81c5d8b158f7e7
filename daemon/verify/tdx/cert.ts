/**
 * X.509 certificates and CRLs as Intel's SGX/TDX PKI uses them: ECDSA P-256 with SHA-256
 * throughout. Parsed with the bounded DER reader so that names compare byte for byte and
 * the SGX extensions are reachable; signatures are checked with node:crypto.
 */
import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { AttestdError, type ErrorCode } from '../../base/errors.js';
import { Der, TAG, type DerNode } from '../der.js';

/** Revoked-certificate entries of one CRL; Intel's CRLs grow with every revoked platform. */
const MAX_REVOKED = 4096;

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const BASIC_CONSTRAINTS = '2.5.29.19';
/** Certificates here are ~1 KiB; a cap keeps hostile input from costing anything. */
export const MAX_CERT_SIZE = 16 * 1024;
export const MAX_CRL_SIZE = 1024 * 1024;

export interface Certificate {
  der: Buffer;
  serialHex: string;
  issuer: Buffer;
  subject: Buffer;
  /** Common name of the subject, for messages only. */
  subjectCn: string;
  notBefore: Date;
  notAfter: Date;
  spki: Buffer;
  publicKey: KeyObject;
  isCa: boolean;
  extensions: Map<string, Buffer>;
  tbs: Buffer;
  signature: Buffer;
}

export interface Crl {
  der: Buffer;
  issuer: Buffer;
  issuerCn: string;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
  revokedSerials: Set<string>;
  tbs: Buffer;
  signature: Buffer;
}

export function parseCertificate(der: Buffer, code: ErrorCode = 'TDX_CERT_CHAIN_INVALID'): Certificate {
  if (der.length > MAX_CERT_SIZE) throw new AttestdError(code, `certificate is ${der.length} bytes`);
  const d: Der<Buffer> = new Der(der, code);
  const top = d.expect(d.read(0), TAG.SEQUENCE, 'Certificate');
  if (top.end !== der.length) d.fail('certificate has trailing bytes');
  const [tbsT, algT, sigT, ...rest] = d.children(top);
  if (!tbsT || !algT || !sigT || rest.length || sigT.tag !== TAG.BIT_STRING) d.fail('certificate is not three elements');
  signatureAlgorithm(d, algT);
  const tbs = d.children(tbsT);
  let i = tbs[0]?.tag === 0xa0 ? 1 : 0;
  const [serialT, innerAlgT, issuerT, validityT, subjectT, spkiT] = tbs.slice(i, i + 6);
  if (!serialT || !innerAlgT || !issuerT || !validityT || !subjectT || !spkiT) d.fail('TBSCertificate is too short');
  i += 6;
  const [nbT, naT] = d.children(validityT);
  if (!nbT || !naT) d.fail('validity is incomplete');
  const extensions = new Map<string, Buffer>();
  let isCa = false;
  for (const t of tbs.slice(i)) {
    if (t.tag !== 0xa3) continue;
    const [list] = d.children(t);
    if (!list) d.fail('empty extensions');
    for (const ext of d.children(list)) {
      const parts = d.children(ext);
      const oid = d.oid(parts[0] ?? d.fail('extension without OID'));
      const value = parts[parts.length - 1];
      if (!value || value.tag !== TAG.OCTET_STRING || parts.length > 3) d.fail(`extension ${oid} is malformed`);
      if (extensions.has(oid)) d.fail(`extension ${oid} appears twice`);
      extensions.set(oid, d.content(value));
      if (oid === BASIC_CONSTRAINTS) isCa = basicConstraintsCa(new Der(d.content(value), code));
    }
  }
  const spki = d.raw(spkiT);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (err) {
    throw new AttestdError(code, 'certificate public key cannot be loaded', { cause: err });
  }
  return {
    der, serialHex: d.intHex(serialT), issuer: d.raw(issuerT), subject: d.raw(subjectT), subjectCn: commonName(d, subjectT),
    notBefore: d.time(nbT), notAfter: d.time(naT), spki, publicKey, isCa, extensions, tbs: d.raw(tbsT),
    signature: d.bitString(sigT, true),
  };
}

export function parseCrl(der: Buffer): Crl {
  const code: ErrorCode = 'TDX_COLLATERAL_INVALID';
  if (der.length > MAX_CRL_SIZE) throw new AttestdError(code, `CRL is ${der.length} bytes`);
  const d: Der<Buffer> = new Der(der, code);
  const top = d.expect(d.read(0), TAG.SEQUENCE, 'CertificateList');
  if (top.end !== der.length) d.fail('CRL has trailing bytes');
  const [tbsT, algT, sigT, ...rest] = d.children(top);
  if (!tbsT || !algT || !sigT || rest.length || sigT.tag !== TAG.BIT_STRING) d.fail('CRL is not three elements');
  signatureAlgorithm(d, algT);
  const tbs = d.children(tbsT);
  let i = tbs[0]?.tag === TAG.INTEGER ? 1 : 0;
  const [, issuerT, thisT] = tbs.slice(i, i + 3);
  if (!issuerT || !thisT) d.fail('TBSCertList is too short');
  i += 3;
  let nextUpdate: Date | undefined;
  const next = tbs[i];
  if (next && (next.tag === TAG.UTC_TIME || next.tag === TAG.GENERALIZED_TIME)) {
    nextUpdate = d.time(next);
    i++;
  }
  const revokedSerials = new Set<string>();
  const list = tbs[i];
  if (list && list.tag === TAG.SEQUENCE) {
    for (const entry of d.children(list, MAX_REVOKED)) {
      const [serial] = d.children(entry);
      revokedSerials.add(d.intHex(serial ?? d.fail('revoked entry without serial')));
    }
  }
  return {
    der, issuer: d.raw(issuerT), issuerCn: commonName(d, issuerT), thisUpdate: d.time(thisT), nextUpdate, revokedSerials,
    tbs: d.raw(tbsT), signature: d.bitString(sigT, true),
  };
}

/** True when `issuer` signed `tbs` (ECDSA, DER signature, SHA-256). */
export function signedBy(tbs: Buffer, signature: Buffer, issuerKey: KeyObject): boolean {
  try {
    return cryptoVerify('sha256', tbs, issuerKey, signature);
  } catch {
    return false;
  }
}

export function spkiSha256(cert: Certificate): string {
  return createHash('sha256').update(cert.spki).digest('hex');
}

/** Every certificate in a PEM text, in order; bounded in count. */
export function pemCertificates(pem: string, code: ErrorCode, max = 8): Buffer[] {
  const out: Buffer[] = [];
  const begin = '-----BEGIN CERTIFICATE-----';
  const end = '-----END CERTIFICATE-----';
  let pos = 0;
  for (;;) {
    const b = pem.indexOf(begin, pos);
    if (b < 0) break;
    const e = pem.indexOf(end, b);
    if (e < 0) throw new AttestdError(code, 'PEM certificate without an END line');
    if (out.length >= max) throw new AttestdError(code, `more than ${max} certificates`);
    const body = pem.slice(b + begin.length, e).replace(/[\r\n]/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) throw new AttestdError(code, 'PEM certificate is not base64');
    out.push(Buffer.from(body, 'base64'));
    pos = e + end.length;
  }
  if (pem.slice(pos).trim() !== '') throw new AttestdError(code, 'text after the last PEM certificate');
  return out;
}

function signatureAlgorithm(d: Der, alg: DerNode): void {
  const [oidT] = d.children(alg);
  const oid = d.oid(oidT ?? d.fail('empty AlgorithmIdentifier'));
  if (oid !== ECDSA_WITH_SHA256) d.fail(`signature algorithm ${oid} is not ecdsa-with-SHA256`);
}

function basicConstraintsCa(d: Der): boolean {
  const seq = d.expect(d.read(0), TAG.SEQUENCE, 'BasicConstraints');
  const first = d.children(seq)[0];
  return first?.tag === TAG.BOOLEAN && d.content(first)[0] === 0xff;
}

function commonName(d: Der<Buffer>, name: DerNode): string {
  for (const rdn of d.children(name)) {
    for (const atv of d.children(rdn)) {
      const [oidT, valueT] = d.children(atv);
      if (oidT && valueT && d.oid(oidT) === '2.5.4.3') return d.content(valueT).toString('utf8');
    }
  }
  return '';
}
