/**
 * The report signature: ECDSA P-384 with SHA-384 over bytes 0x000..0x29F, made with the
 * VCEK or VLEK. The report stores r and s as 72-byte little-endian fields of which P-384
 * uses the low 48 bytes; node:crypto wants them big-endian, as r || s (IEEE P1363).
 */
import { verify, type KeyObject } from 'node:crypto';
import { AttestdError } from '../../base/errors.js';
import type { Certificate } from '../x509/certificate.js';
import { SNP_REPORT_SIZE, SNP_SIGNATURE_OFFSET, SNP_SIGNED_LENGTH } from './report.js';

const FIELD = 72;
const P384_BYTES = 48;

/** The EC P-384 key of a VCEK or VLEK (imported once, when the certificate was parsed). */
export function reportSigningKey(cert: Pick<Certificate, 'publicKey'>): KeyObject {
  const key = cert.publicKey;
  if (!key) throw new AttestdError('SNP_CERT_CHAIN_INVALID', 'the VCEK/VLEK public key does not decode');
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'secp384r1') {
    throw new AttestdError('SNP_CERT_CHAIN_INVALID', 'the VCEK/VLEK key is not an EC P-384 key');
  }
  return key;
}

/** r || s, big-endian, 48 bytes each. */
export function p1363Signature(report: Uint8Array): Buffer {
  const component = (at: number): Buffer => Buffer.from(report.subarray(at, at + P384_BYTES)).reverse();
  return Buffer.concat([component(SNP_SIGNATURE_OFFSET), component(SNP_SIGNATURE_OFFSET + FIELD)]);
}

/** Throws SNP_SIGNATURE_INVALID unless the report's signature verifies with `key`. */
export function verifyReportSignature(report: Uint8Array, key: KeyObject): void {
  if (report.length !== SNP_REPORT_SIZE) {
    throw new AttestdError('CVM_REPORT_MALFORMED', `SEV-SNP report: ${report.length} bytes, expected ${SNP_REPORT_SIZE}`);
  }
  let ok: boolean;
  try {
    ok = verify('sha384', report.subarray(0, SNP_SIGNED_LENGTH), { key, dsaEncoding: 'ieee-p1363' }, p1363Signature(report));
  } catch (err) {
    throw new AttestdError('SNP_SIGNATURE_INVALID', 'the report signature could not be checked', { cause: err });
  }
  if (!ok) throw new AttestdError('SNP_SIGNATURE_INVALID');
}
