/**
 * Certificate extensions: the list (each OID once, its value kept as the extnValue contents),
 * the standard ones every chain check reads (basicConstraints, keyUsage), and the ones only
 * some verifiers need, decoded on request (key identifiers, subjectAltName directory names,
 * subject directory attributes). Vendor extensions (AMD's TCB, Intel's SGX, NVIDIA's DICE)
 * are decoded by their verifiers from the values kept here.
 */
import type { Extension, Name } from '@peculiar/asn1-x509';
import { Asn1Reader, TAG, x509Schemas } from './asn1.js';

export const EXT_OID = {
  SUBJECT_DIRECTORY_ATTRIBUTES: '2.5.29.9',
  SUBJECT_KEY_ID: '2.5.29.14',
  KEY_USAGE: '2.5.29.15',
  SUBJECT_ALT_NAME: '2.5.29.17',
  BASIC_CONSTRAINTS: '2.5.29.19',
  AUTHORITY_KEY_ID: '2.5.29.35',
} as const;

/** keyUsage bits: bit 0 digitalSignature ... bit 5 keyCertSign, bit 6 cRLSign. */
export const KEY_USAGE = {
  DIGITAL_SIGNATURE: 1 << 0,
  KEY_CERT_SIGN: 1 << 5,
  CRL_SIGN: 1 << 6,
} as const;

const MAX_EXTENSIONS = 64;

export interface ExtensionFacts {
  /** extnValue contents by OID. */
  extensions: ReadonlyMap<string, Buffer>;
  /** OIDs of the extensions marked critical. */
  critical: ReadonlySet<string>;
  /** cA of basicConstraints; false when absent. */
  isCa: boolean;
  /** pathLenConstraint of basicConstraints, when given. */
  pathLen: number | undefined;
  /** keyUsage bits (see KEY_USAGE); undefined when absent, which restricts nothing. */
  keyUsage: number | undefined;
}

/** BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL } */
function basicConstraints(r: Asn1Reader, value: Buffer): { isCa: boolean; pathLen: number | undefined } {
  const what = 'basicConstraints';
  const fields = r.children(r.expect(r.decode(value, what), TAG.SEQUENCE, what), what, 2);
  let isCa = false;
  let pathLen: number | undefined;
  let at = 0;
  const first = fields[0];
  // cA FALSE spelled out is not DER, yet issuers write it; it reads as what it says.
  if (first && r.tagOf(first) === TAG.BOOLEAN) {
    isCa = r.boolean(first, what);
    at = 1;
  }
  const next = fields[at];
  if (next) {
    pathLen = r.smallUint(next, TAG.INTEGER, 'pathLenConstraint');
    at++;
  }
  if (at !== fields.length) r.fail(`${what} holds an unexpected element`);
  return { isCa, pathLen };
}

function keyUsage(r: Asn1Reader, value: Buffer): number {
  const bits = r.content(r.expect(r.decode(value, 'keyUsage'), TAG.BIT_STRING, 'keyUsage'));
  if (bits.length === 0 || (bits[0] as number) > 7) r.fail('keyUsage has a bad unused-bits count');
  // Bit 0 (digitalSignature) is the most significant bit of the first byte after the count.
  let out = 0;
  for (let i = 0; i < Math.min(bits.length - 1, 2) * 8; i++) {
    if (((bits[1 + (i >> 3)] as number) >> (7 - (i & 7))) & 1) out |= 1 << i;
  }
  return out;
}

/** The extension list of a certificate (undefined when it has none). */
export function readExtensions(r: Asn1Reader, list: readonly Extension[] | undefined): ExtensionFacts {
  const extensions = new Map<string, Buffer>();
  const critical = new Set<string>();
  if (list && list.length > MAX_EXTENSIONS) r.fail(`more than ${MAX_EXTENSIONS} extensions`);
  for (const ext of list ?? []) {
    if (extensions.has(ext.extnID)) r.fail(`extension ${ext.extnID} appears twice`);
    extensions.set(ext.extnID, Buffer.from(ext.extnValue.buffer));
    if (ext.critical) critical.add(ext.extnID);
  }
  const bc = extensions.get(EXT_OID.BASIC_CONSTRAINTS);
  const ku = extensions.get(EXT_OID.KEY_USAGE);
  return {
    extensions,
    critical,
    ...(bc ? basicConstraints(r, bc) : { isCa: false, pathLen: undefined }),
    keyUsage: ku ? keyUsage(r, ku) : undefined,
  };
}

export interface KeyIdentifiers {
  subjectKeyId?: Buffer;
  authority?: { keyId?: Buffer; serial?: Buffer; issuers: Name[] };
}

/** subjectKeyIdentifier and authorityKeyIdentifier, where present. */
export function keyIdentifiers(r: Asn1Reader, extensions: ReadonlyMap<string, Buffer>): KeyIdentifiers {
  const out: KeyIdentifiers = {};
  const skid = extensions.get(EXT_OID.SUBJECT_KEY_ID);
  if (skid) out.subjectKeyId = Buffer.from(r.schema(skid, x509Schemas().SubjectKeyIdentifier, 'subjectKeyIdentifier', 'der').value.buffer);
  const akid = extensions.get(EXT_OID.AUTHORITY_KEY_ID);
  if (akid) {
    const v = r.schema(akid, x509Schemas().AuthorityKeyIdentifier, 'authorityKeyIdentifier', 'der').value;
    out.authority = {
      ...(v.keyIdentifier ? { keyId: Buffer.from(v.keyIdentifier.buffer) } : {}),
      ...(v.authorityCertSerialNumber ? { serial: Buffer.from(v.authorityCertSerialNumber) } : {}),
      issuers: (v.authorityCertIssuer ?? []).flatMap((g) => (g.directoryName ? [g.directoryName] : [])),
    };
  }
  return out;
}

/** The directoryName entries of the subjectAltName; other name forms are skipped. */
export function altDirectoryNames(r: Asn1Reader, extensions: ReadonlyMap<string, Buffer>, max = 16): Name[] {
  const san = extensions.get(EXT_OID.SUBJECT_ALT_NAME);
  if (!san) return [];
  const names = r.schema(san, x509Schemas().SubjectAlternativeName, 'subjectAltName', 'der').value;
  if (names.length > max) r.fail(`subjectAltName has more than ${max} names`);
  return names.flatMap((g) => (g.directoryName ? [g.directoryName] : []));
}

/** The attributes of Subject Directory Attributes: type and encoded values. */
export function directoryAttributes(r: Asn1Reader, extensions: ReadonlyMap<string, Buffer>, max = 16): { type: string; values: Buffer[] }[] {
  const sda = extensions.get(EXT_OID.SUBJECT_DIRECTORY_ATTRIBUTES);
  if (!sda) return [];
  const attrs = r.schema(sda, x509Schemas().SubjectDirectoryAttributes, 'subjectDirectoryAttributes', 'der').value;
  if (attrs.length > max) r.fail(`subjectDirectoryAttributes has more than ${max} attributes`);
  return attrs.map((a) => ({ type: a.type, values: a.values.map((v) => Buffer.from(v)) }));
}
