/**
 * X.509 structure of the AMD key certificates, read with the bounded DER reader. Parsing
 * checks shape only; signatures, names and validity are checked by chain.ts. Every failure
 * is SNP_CERT_CHAIN_INVALID: a certificate that does not even parse cannot chain.
 */
import { AttestdError } from '../../base/errors.js';
import { Der, TAG, ctx, type DerNode } from '../der.js';

const OID = {
  RSASSA_PSS: '1.2.840.113549.1.1.10',
  MGF1: '1.2.840.113549.1.1.8',
  SHA384: '2.16.840.1.101.3.4.2.2',
  COMMON_NAME: '2.5.4.3',
  BASIC_CONSTRAINTS: '2.5.29.19',
  KEY_USAGE: '2.5.29.15',
} as const;

/** Extensions this code understands well enough to honour when marked critical. */
const KNOWN_CRITICAL = new Set<string>([OID.BASIC_CONSTRAINTS, OID.KEY_USAGE]);

const MAX_CERT_BYTES = 16 * 1024;
const MAX_EXTENSIONS = 64;

export interface PssParams {
  hash: string;
  mgfHash: string;
  saltLength: number;
}

export interface Certificate {
  der: Uint8Array;
  /** The signed TBSCertificate bytes, tag and length included. */
  tbs: Uint8Array;
  /** RSASSA-PSS parameters of the outer signature algorithm (AMD signs only with PSS). */
  pss: PssParams;
  signature: Uint8Array;
  serialHex: string;
  issuer: Uint8Array;
  subject: Uint8Array;
  subjectCommonName: string | undefined;
  notBefore: Date;
  notAfter: Date;
  /** SubjectPublicKeyInfo, DER. */
  spki: Uint8Array;
  /** Extension values (the extnValue OCTET STRING content) by OID. */
  extensions: Map<string, Uint8Array>;
  isCa: boolean;
  /** keyCertSign in keyUsage; true when the extension is absent (no restriction). */
  mayCertSign: boolean;
}

function pssParams(d: Der, algId: DerNode): PssParams {
  const [oidNode, params, ...more] = d.children(d.expect(algId, TAG.SEQUENCE, 'signature algorithm'), 2);
  if (!oidNode || more.length > 0) d.fail('signature algorithm');
  if (d.oid(oidNode) !== OID.RSASSA_PSS) d.fail('the signature algorithm is not RSASSA-PSS');
  if (!params) d.fail('RSASSA-PSS without parameters');
  // RFC 4055 defaults (SHA-1, salt 20) are never what AMD uses, so absent fields fail below.
  const out: PssParams = { hash: 'absent', mgfHash: 'absent', saltLength: 20 };
  for (const field of d.children(d.expect(params, TAG.SEQUENCE, 'RSASSA-PSS parameters'), 4)) {
    const [inner, extra] = d.children(field, 1);
    if (!inner || extra) d.fail('RSASSA-PSS parameter');
    if (field.tag === ctx(0)) {
      out.hash = hashOid(d, inner);
    } else if (field.tag === ctx(1)) {
      const [mgf, mgfParams] = d.children(d.expect(inner, TAG.SEQUENCE, 'mask generation'), 2);
      if (!mgf || !mgfParams || d.oid(mgf) !== OID.MGF1) d.fail('mask generation function is not MGF1');
      out.mgfHash = hashOid(d, mgfParams);
    } else if (field.tag === ctx(2)) {
      out.saltLength = d.smallUint(inner);
    } else if (field.tag === ctx(3)) {
      if (d.smallUint(inner) !== 1) d.fail('RSASSA-PSS trailer field');
    } else {
      d.fail('unknown RSASSA-PSS parameter');
    }
  }
  return out;
}

function hashOid(d: Der, algId: DerNode): string {
  const [oid, params, more] = d.children(d.expect(algId, TAG.SEQUENCE, 'hash algorithm'), 2);
  if (!oid || more || (params && (params.tag !== TAG.NULL || params.end !== params.contentStart))) d.fail('hash algorithm');
  return d.oid(oid) === OID.SHA384 ? 'sha384' : 'other';
}

function commonName(d: Der, name: DerNode): string | undefined {
  let cn: string | undefined;
  for (const rdn of d.children(d.expect(name, TAG.SEQUENCE, 'name'), 32)) {
    for (const atv of d.children(d.expect(rdn, TAG.SET, 'relative distinguished name'), 8)) {
      const [type, value, more] = d.children(d.expect(atv, TAG.SEQUENCE, 'attribute'), 2);
      if (!type || !value || more) d.fail('attribute');
      if (d.oid(type) === OID.COMMON_NAME) {
        if (cn !== undefined) d.fail('more than one common name');
        cn = d.text(value);
      }
    }
  }
  return cn;
}

interface ExtensionFacts {
  extensions: Map<string, Uint8Array>;
  isCa: boolean;
  mayCertSign: boolean;
}

function extensionsOf(d: Der, wrapper: DerNode | undefined): ExtensionFacts {
  const facts: ExtensionFacts = { extensions: new Map(), isCa: false, mayCertSign: true };
  if (!wrapper) return facts;
  const [list, more] = d.children(wrapper, 1);
  if (!list || more) d.fail('extensions wrapper');
  for (const ext of d.children(d.expect(list, TAG.SEQUENCE, 'extensions'), MAX_EXTENSIONS)) {
    const parts = d.children(d.expect(ext, TAG.SEQUENCE, 'extension'), 3);
    const oid = d.oid(parts[0] ?? d.fail('extension id'));
    let critical = false;
    let valueNode = parts[1];
    if (parts.length === 3 && parts[1]) {
      critical = d.boolean(parts[1]);
      valueNode = parts[2];
    }
    if (!valueNode) d.fail('extension value');
    const value = d.content(d.expect(valueNode, TAG.OCTET_STRING, 'extension value'));
    if (facts.extensions.has(oid)) d.fail(`duplicate extension ${oid}`);
    if (critical && !KNOWN_CRITICAL.has(oid)) d.fail(`unsupported critical extension ${oid}`);
    facts.extensions.set(oid, value);
    if (oid === OID.BASIC_CONSTRAINTS) {
      const inner = new Der(value, d.code);
      const fields = inner.children(inner.expect(inner.root(), TAG.SEQUENCE, 'basic constraints'), 2);
      facts.isCa = fields[0]?.tag === TAG.BOOLEAN ? inner.boolean(fields[0]) : false;
    } else if (oid === OID.KEY_USAGE) {
      const inner = new Der(value, d.code);
      const bits = inner.content(inner.expect(inner.root(), TAG.BIT_STRING, 'key usage'));
      // Bit 5 (keyCertSign) sits in the first content byte after the unused-bits count.
      facts.mayCertSign = bits.length >= 2 && ((bits[1] as number) & 0x04) !== 0;
    }
  }
  return facts;
}

export function parseCertificate(der: Uint8Array): Certificate {
  const d: Der = new Der(der, 'SNP_CERT_CHAIN_INVALID');
  if (der.length > MAX_CERT_BYTES) d.fail('certificate too large');
  const [tbsNode, algNode, sigNode, extra] = d.children(d.expect(d.root(), TAG.SEQUENCE, 'certificate'), 3);
  if (!tbsNode || !algNode || !sigNode || extra) d.fail('certificate');
  const fields = d.children(d.expect(tbsNode, TAG.SEQUENCE, 'tbsCertificate'), 10);
  const [versionWrap, serial, tbsAlg, issuer, validity, subject, spki, ...optional] = fields;
  if (!versionWrap || !serial || !tbsAlg || !issuer || !validity || !subject || !spki) d.fail('tbsCertificate fields');
  d.expect(versionWrap, ctx(0), 'version');
  const [version] = d.children(versionWrap, 1);
  if (!version || d.smallUint(version) !== 2) d.fail('not an X.509 v3 certificate');
  d.expect(serial, TAG.INTEGER, 'serial number');
  if (!Buffer.from(d.raw(tbsAlg)).equals(d.raw(algNode))) d.fail('inner and outer signature algorithms differ');
  const [notBefore, notAfter, more] = d.children(d.expect(validity, TAG.SEQUENCE, 'validity'), 2);
  if (!notBefore || !notAfter || more) d.fail('validity');
  d.expect(spki, TAG.SEQUENCE, 'subject public key info');
  let extWrap: DerNode | undefined;
  for (const node of optional) {
    if (node.tag === ctx(3) && !extWrap) extWrap = node;
    else if (node.tag !== 0x81 && node.tag !== 0x82) d.fail('unexpected tbsCertificate field');
  }
  const facts = extensionsOf(d, extWrap);
  return {
    der,
    tbs: d.raw(tbsNode),
    pss: pssParams(d, algNode),
    signature: d.bitString(sigNode, true),
    serialHex: Buffer.from(d.content(serial)).toString('hex'),
    issuer: d.raw(issuer),
    subject: d.raw(subject),
    subjectCommonName: commonName(d, subject),
    notBefore: d.time(notBefore),
    notAfter: d.time(notAfter),
    spki: d.raw(spki),
    ...facts,
  };
}

function pemFail(why: string): never {
  throw new AttestdError('SNP_CERT_CHAIN_INVALID', why);
}

/** Certificates out of PEM text, in order. Bounded: a chain file holds a handful. */
export function pemCertificates(text: string, max = 8): Uint8Array[] {
  const out: Uint8Array[] = [];
  const begin = '-----BEGIN CERTIFICATE-----';
  const end = '-----END CERTIFICATE-----';
  let at = 0;
  for (;;) {
    const b = text.indexOf(begin, at);
    if (b < 0) break;
    const e = text.indexOf(end, b + begin.length);
    if (e < 0) pemFail('PEM block without an end line');
    if (out.length >= max) pemFail('too many certificates in PEM');
    const body = text.slice(b + begin.length, e).replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) pemFail('PEM body is not base64');
    out.push(new Uint8Array(Buffer.from(body, 'base64')));
    at = e + end.length;
  }
  return out;
}
