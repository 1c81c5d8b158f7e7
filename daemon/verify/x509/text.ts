/**
 * Subject, issuer and serial number as text, spelled as OpenSSL prints them (through
 * node:crypto's X509Certificate): EK verification results carry these strings into logs and
 * audit records, so they keep the one spelling they have always had. For display only; no
 * check reads them.
 */
import { X509Certificate } from 'node:crypto';
import { AttestdError, type ErrorCode } from '../../base/errors.js';
import { memo } from './cache.js';
import type { Certificate } from './certificate.js';

export interface CertificateText {
  /** One line, "C=DE, O=...": OpenSSL's lines joined with ", " (empty for an empty name). */
  subject: string;
  issuer: string;
  /** Uppercase hex, as OpenSSL prints serial numbers. */
  serialNumber: string;
}

/** Node leaves a name it cannot print undefined, despite its type. */
function oneLine(name: string | undefined): string {
  return typeof name === 'string' ? name.split('\n').join(', ') : '';
}

export function certificateText(cert: Certificate, code: ErrorCode): CertificateText {
  return memo(cert, 'openssl-text', () => {
    let x: X509Certificate;
    try {
      x = new X509Certificate(cert.der);
    } catch (err) {
      throw new AttestdError(code, `"${cert.commonName ?? ''}" is not a certificate OpenSSL reads: ${(err as Error).message}`, { cause: err });
    }
    return { subject: oneLine(x.subject), issuer: oneLine(x.issuer), serialNumber: x.serialNumber };
  });
}
