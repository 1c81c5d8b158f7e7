/**
 * The fields of an X.509 certificate that node:crypto does not expose, read with a bounded
 * DER reader: validity as dates, and the TPM fields of an EK certificate (TCG EK Credential
 * Profile for TPM 2.0): manufacturer, model and firmware version in
 * directoryName entries of the subjectAltName (OIDs 2.23.133.2.1, .2, .3), the TPM
 * specification in Subject Directory Attributes (2.23.133.2.16). Certificate bytes are
 * hostile: lengths are checked against their container and every list is bounded; anything
 * malformed is EK_CERT_INVALID.
 */
import type { X509Certificate } from 'node:crypto';
import { Der, TAG, type DerNode } from './der.js';

const MAX_ATTRIBUTE_CHARS = 256;

const OID = {
  SUBJECT_ALT_NAME: '2.5.29.17',
  SUBJECT_DIRECTORY_ATTRIBUTES: '2.5.29.9',
  TPM_MANUFACTURER: '2.23.133.2.1',
  TPM_MODEL: '2.23.133.2.2',
  TPM_VERSION: '2.23.133.2.3',
  TPM_SPECIFICATION: '2.23.133.2.16',
} as const;

export interface TpmDeviceInfo {
  /** TPM manufacturer from the SAN, as written ("id:49465800" for Infineon). */
  manufacturer?: string;
  model?: string;
  /** Firmware version from the SAN ("id:00070002"). */
  version?: string;
  /** From Subject Directory Attributes: TPM specification family, level and revision. */
  specification?: { family: string; level: number; revision: number };
}

/** notBefore and notAfter read from the DER, not from node's display strings. */
export function validity(c: X509Certificate): { notBefore: Date; notAfter: Date } {
  const d: Der = new Der(c.raw, 'EK_CERT_INVALID');
  const tbs = tbsFields(d);
  const validityNode = d.expect(tbs[tbs[0]?.tag === 0xa0 ? 4 : 3] ?? d.fail('no validity'), TAG.SEQUENCE, 'validity');
  const [from, to] = d.children(validityNode, 2);
  if (from === undefined || to === undefined) d.fail('validity needs two times');
  return { notBefore: d.time(from), notAfter: d.time(to) };
}

function tbsFields(d: Der): DerNode[] {
  const cert = d.expect(d.root(), TAG.SEQUENCE, 'certificate');
  const tbs = d.children(cert, 3)[0] ?? d.fail('no TBSCertificate');
  return d.children(d.expect(tbs, TAG.SEQUENCE, 'TBSCertificate'), 10);
}

/** extnID -> extnValue contents of the certificate's extensions (each listed once). */
function extensions(d: Der): Map<string, DerNode> {
  const out = new Map<string, DerNode>();
  const wrapper = tbsFields(d).find((n) => n.tag === 0xa3);
  if (wrapper === undefined) return out;
  const list = d.children(wrapper, 1)[0] ?? d.fail('empty extensions');
  for (const ext of d.children(d.expect(list, TAG.SEQUENCE, 'extensions'), 64)) {
    const parts = d.children(d.expect(ext, TAG.SEQUENCE, 'extension'), 3);
    const oid = d.oid(parts[0] ?? d.fail('extension without an id'));
    const value = parts[parts.length - 1];
    if (parts.length < 2 || value === undefined) d.fail('extension without a value');
    if (parts.length === 3) d.boolean(parts[1] as DerNode);
    if (out.has(oid)) d.fail(`extension ${oid} appears twice`);
    const inner = d.read(d.expect(value, TAG.OCTET_STRING, 'extnValue').contentStart, value.end);
    if (inner.end !== value.end) d.fail(`extension ${oid} has trailing bytes`);
    out.set(oid, inner);
  }
  return out;
}

/**
 * The TPM fields of an EK certificate: manufacturer, model and version from directoryName
 * entries of the subjectAltName, the specification from Subject Directory Attributes.
 * Exported for tests and tools; the bytes must already be a verified certificate.
 */
export function readTpmInfo(der: Uint8Array): TpmDeviceInfo {
  const d: Der = new Der(der, 'EK_CERT_INVALID');
  const exts = extensions(d);
  const info: TpmDeviceInfo = {};
  const san = exts.get(OID.SUBJECT_ALT_NAME);
  if (san !== undefined) {
    for (const name of d.children(d.expect(san, TAG.SEQUENCE, 'subjectAltName'), 16)) {
      if (name.tag !== 0xa4) continue; // [4] directoryName; other name forms carry no TPM fields
      const dn = d.children(name, 1)[0] ?? d.fail('empty directoryName');
      for (const rdn of d.children(d.expect(dn, TAG.SEQUENCE, 'Name'), 16)) {
        for (const atv of d.children(d.expect(rdn, TAG.SET, 'RDN'), 16)) {
          const [type, value] = d.children(d.expect(atv, TAG.SEQUENCE, 'attribute'), 2);
          if (type === undefined || value === undefined) d.fail('attribute needs a type and a value');
          const oid = d.oid(type);
          const key =
            oid === OID.TPM_MANUFACTURER ? 'manufacturer' : oid === OID.TPM_MODEL ? 'model' : oid === OID.TPM_VERSION ? 'version' : undefined;
          if (key === undefined) continue;
          if (value.end - value.contentStart > MAX_ATTRIBUTE_CHARS) d.fail(`${key} is too long`);
          info[key] = d.text(value);
        }
      }
    }
  }
  const sda = exts.get(OID.SUBJECT_DIRECTORY_ATTRIBUTES);
  if (sda !== undefined) {
    for (const attr of d.children(d.expect(sda, TAG.SEQUENCE, 'subjectDirectoryAttributes'), 16)) {
      const [type, values] = d.children(d.expect(attr, TAG.SEQUENCE, 'attribute'), 2);
      if (type === undefined || values === undefined) d.fail('attribute needs a type and values');
      if (d.oid(type) !== OID.TPM_SPECIFICATION) continue;
      const spec = d.children(d.expect(values, TAG.SET, 'attribute values'), 1)[0] ?? d.fail('empty tpmSpecification');
      const [family, level, revision] = d.children(d.expect(spec, TAG.SEQUENCE, 'tpmSpecification'), 3);
      if (family === undefined || level === undefined || revision === undefined) d.fail('tpmSpecification needs three fields');
      if (family.end - family.contentStart > MAX_ATTRIBUTE_CHARS) d.fail('family is too long');
      info.specification = { family: d.text(family), level: d.smallUint(level), revision: d.smallUint(revision) };
    }
  }
  return info;
}

