/**
 * The TPM fields of an EK certificate (TCG EK Credential Profile for TPM 2.0): manufacturer,
 * model and firmware version in directoryName entries of the subjectAltName (OIDs
 * 2.23.133.2.1, .2, .3), the TPM specification in Subject Directory Attributes
 * (2.23.133.2.16). The extensions come from x509/; certificate bytes are hostile, so every
 * list here is bounded and anything malformed is EK_CERT_INVALID.
 */
import type { AttributeValue } from '@peculiar/asn1-x509';
import { Asn1Reader, TAG } from './x509/asn1.js';
import { parseCertificate, type Certificate } from './x509/certificate.js';
import { altDirectoryNames, directoryAttributes } from './x509/extensions.js';

const MAX_ATTRIBUTE_CHARS = 256;
const MAX_LIST = 16;
/** EK certificates are a few KiB; some vendors' are larger than the AMD or Intel ones. */
export const MAX_EK_CERT_BYTES = 64 * 1024;

const OID = {
  TPM_MANUFACTURER: '2.23.133.2.1',
  TPM_MODEL: '2.23.133.2.2',
  TPM_VERSION: '2.23.133.2.3',
  TPM_SPECIFICATION: '2.23.133.2.16',
} as const;

const SAN_FIELDS: Readonly<Record<string, 'manufacturer' | 'model' | 'version'>> = {
  [OID.TPM_MANUFACTURER]: 'manufacturer',
  [OID.TPM_MODEL]: 'model',
  [OID.TPM_VERSION]: 'version',
};

export interface TpmDeviceInfo {
  /** TPM manufacturer from the SAN, as written ("id:49465800" for Infineon). */
  manufacturer?: string;
  model?: string;
  /** Firmware version from the SAN ("id:00070002"). */
  version?: string;
  /** From Subject Directory Attributes: TPM specification family, level and revision. */
  specification?: { family: string; level: number; revision: number };
}

/** An IA5String, PrintableString or UTF8String value, at most MAX_ATTRIBUTE_CHARS bytes. */
function attributeString(r: Asn1Reader, value: AttributeValue, key: string): string {
  const utf8 = value.utf8String;
  const text = utf8 ?? value.printableString ?? value.ia5String;
  if (text === undefined) r.fail(`${key} is not a string`);
  if (Buffer.byteLength(text, utf8 === undefined ? 'latin1' : 'utf8') > MAX_ATTRIBUTE_CHARS) r.fail(`${key} is too long`);
  return text;
}

/**
 * The TPM fields of a parsed EK certificate: manufacturer, model and version from
 * directoryName entries of the subjectAltName, the specification from Subject Directory
 * Attributes.
 */
export function tpmInfo(cert: Certificate): TpmDeviceInfo {
  const r: Asn1Reader = new Asn1Reader('EK_CERT_INVALID');
  const info: TpmDeviceInfo = {};
  for (const dn of altDirectoryNames(r, cert.extensions, MAX_LIST)) {
    if (dn.length > MAX_LIST) r.fail('a directoryName has too many RDNs');
    for (const rdn of dn) {
      if (rdn.length > MAX_LIST) r.fail('an RDN has too many attributes');
      for (const atv of rdn) {
        const key = SAN_FIELDS[atv.type];
        if (key !== undefined) info[key] = attributeString(r, atv.value, key);
      }
    }
  }
  for (const attr of directoryAttributes(r, cert.extensions, MAX_LIST)) {
    if (attr.type !== OID.TPM_SPECIFICATION) continue;
    const [spec, more] = attr.values;
    if (!spec) r.fail('empty tpmSpecification');
    if (more) r.fail('tpmSpecification has more than one value');
    const [family, level, revision, ...extra] = r.children(r.expect(r.decode(spec, 'tpmSpecification'), TAG.SEQUENCE, 'tpmSpecification'), 'tpmSpecification', 3);
    if (!family || !level || !revision || extra.length > 0) r.fail('tpmSpecification needs three fields');
    if (r.content(family).length > MAX_ATTRIBUTE_CHARS) r.fail('family is too long');
    info.specification = { family: r.text(family, 'family'), level: r.smallUint(level), revision: r.smallUint(revision) };
  }
  return info;
}

/**
 * The TPM fields of an EK certificate given as DER. Exported for tests and tools; the bytes
 * must already be a verified certificate.
 */
export function readTpmInfo(der: Uint8Array): TpmDeviceInfo {
  return tpmInfo(parseCertificate(der, 'EK_CERT_INVALID', { encoding: 'ber', maxBytes: MAX_EK_CERT_BYTES }));
}
