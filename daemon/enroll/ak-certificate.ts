/**
 * The AK certificate an enrolling party issues once a host proved, by credential activation,
 * that its attestation key lives in the TPM whose EK certificate it checked: X.509 v3, built
 * with @peculiar/asn1-x509 and signed with the enrolling CA's key through node:crypto.
 *
 * Profile (verify/ak-certificate.ts checks it): subject CN "attestd AK <name prefix>"; the AK's
 * own public key; basicConstraints cA false and keyUsage digitalSignature, both critical;
 * extKeyUsage tcg-kp-AIKCertificate (2.23.133.8.3); subjectAltName URIs naming the AK (its TPM
 * name) and the EK certificate (its SHA-256); key identifiers; a random 128-bit serial.
 */
import { createHash, randomBytes, sign, type KeyObject } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier, AttributeTypeAndValue, AttributeValue, AuthorityKeyIdentifier, BasicConstraints, Certificate, ExtendedKeyUsage, Extension,
  Extensions, GeneralName, KeyIdentifier, KeyUsage, KeyUsageFlags, Name, RelativeDistinguishedName, SubjectAlternativeName,
  SubjectKeyIdentifier, SubjectPublicKeyInfo, TBSCertificate, Validity, Version, id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints, id_ce_extKeyUsage, id_ce_keyUsage, id_ce_subjectAltName, id_ce_subjectKeyIdentifier,
} from '@peculiar/asn1-x509';
import { AttestdError } from '../base/errors.js';
import { AK_CERT_EKU, akNameUri, ekCertUri } from '../verify/ak-certificate.js';
import { parseCertificate } from '../verify/x509/certificate.js';

export interface AkCertificateInput {
  /** The AK's public key and TPM name. */
  akKey: KeyObject;
  akName: Buffer;
  ekCertificateSha256: Buffer;
  /** The enrolling CA: its certificate (DER) and private key. */
  caCertificate: Buffer;
  caKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
}

/** The signature algorithm for the CA's key: ECDSA with SHA-256 or SHA-384, or RSA PKCS#1 v1.5 with SHA-256. */
function algorithmFor(key: KeyObject): { oid: string; hash: string; params?: ArrayBuffer | null } {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    return curve === 'secp384r1' ? { oid: '1.2.840.10045.4.3.3', hash: 'sha384' } : { oid: '1.2.840.10045.4.3.2', hash: 'sha256' };
  }
  if (key.asymmetricKeyType === 'rsa') return { oid: '1.2.840.113549.1.1.11', hash: 'sha256', params: null };
  throw new AttestdError('INVALID_ARGUMENT', `the CA key is ${String(key.asymmetricKeyType)}; an EC or RSA key is needed`);
}

const toArrayBuffer = (b: Buffer): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

const extension = (extnID: string, critical: boolean, value: unknown): Extension =>
  new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });

export function issueAkCertificate(i: AkCertificateInput): Buffer {
  const ca = parseCertificate(i.caCertificate, 'ENROLL_INVALID');
  const spkiDer = i.akKey.export({ type: 'spki', format: 'der' });
  // The authority key identifier is the CA's own subject key identifier, when it has one.
  const caSki = ca.extensions.get(id_ce_subjectKeyIdentifier);
  const caKeyId = caSki ? new KeyIdentifier(toArrayBuffer(Buffer.from(AsnConvert.parse(caSki, SubjectKeyIdentifier).buffer))) : undefined;
  const keyId = (spki: Buffer) => createHash('sha256').update(spki).digest().subarray(0, 20);
  const alg = algorithmFor(i.caKey);
  const algorithm = new AlgorithmIdentifier(alg.params === undefined ? { algorithm: alg.oid } : { algorithm: alg.oid, parameters: alg.params });
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: toArrayBuffer(serial),
    signature: algorithm,
    issuer: AsnConvert.parse(ca.subject, Name),
    validity: new Validity({ notBefore: i.notBefore, notAfter: i.notAfter }),
    subject: new Name([new RelativeDistinguishedName([new AttributeTypeAndValue({
      type: '2.5.4.3', value: new AttributeValue({ utf8String: `attestd AK ${i.akName.subarray(2, 10).toString('hex')}` }),
    })])]),
    subjectPublicKeyInfo: AsnConvert.parse(spkiDer, SubjectPublicKeyInfo),
    extensions: new Extensions([
      extension(id_ce_basicConstraints, true, new BasicConstraints({ cA: false })),
      extension(id_ce_keyUsage, true, new KeyUsage(KeyUsageFlags.digitalSignature)),
      extension(id_ce_extKeyUsage, false, new ExtendedKeyUsage([AK_CERT_EKU])),
      extension(id_ce_subjectAltName, false, new SubjectAlternativeName([
        new GeneralName({ uniformResourceIdentifier: akNameUri(i.akName) }),
        new GeneralName({ uniformResourceIdentifier: ekCertUri(i.ekCertificateSha256) }),
      ])),
      extension(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(keyId(spkiDer))),
      ...(caKeyId ? [extension(id_ce_authorityKeyIdentifier, false, new AuthorityKeyIdentifier({ keyIdentifier: caKeyId }))] : []),
    ]),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = sign(alg.hash, tbsDer, i.caKey);
  const cert = new Certificate({ tbsCertificate: tbs, signatureAlgorithm: algorithm, signatureValue: toArrayBuffer(signature) });
  return Buffer.from(AsnConvert.serialize(cert));
}
