/**
 * Certificates and CRLs of Intel's SGX/TDX PKI, as x509/ parses them (once per process), with
 * Intel's profile checked on top: ECDSA P-256 with SHA-256 throughout, a key node:crypto can
 * import. The subject's (or CRL issuer's) common name rides along for messages.
 */
import type { KeyObject } from 'node:crypto';
import { AttestdError, type ErrorCode } from '../../base/errors.js';
import { memo } from '../x509/cache.js';
import { parseCertificate, type Certificate } from '../x509/certificate.js';
import { parseCrl, type Crl } from '../x509/crl.js';
import { pemCertificates } from '../x509/pem.js';
import { SIG_OID } from '../x509/signature.js';

export interface IntelCertificate extends Certificate {
  /** Common name of the subject, for messages only ('' when it has none). */
  readonly subjectCn: string;
  /** Always there: the profile refuses a certificate whose key does not import. */
  readonly publicKey: KeyObject;
}

export interface IntelCrl extends Crl {
  /** Common name of the issuer, for messages only ('' when it has none). */
  readonly issuerCn: string;
}

const MAX_CHAIN_CERTS = 8;

function checkAlgorithm(oid: string, code: ErrorCode): void {
  if (oid !== SIG_OID.ECDSA_SHA256) throw new AttestdError(code, `signature algorithm ${oid} is not ecdsa-with-SHA256`);
}

/** A certificate of Intel's PKI; `code` on any failure. */
export function parseIntelCertificate(der: Uint8Array, code: ErrorCode = 'TDX_CERT_CHAIN_INVALID'): IntelCertificate {
  const cert = parseCertificate(der, code);
  checkAlgorithm(cert.signatureAlgorithm, code);
  const publicKey = cert.publicKey;
  if (!publicKey) throw new AttestdError(code, 'certificate public key cannot be loaded');
  return memo(cert, 'intel', () => Object.freeze({ ...cert, publicKey, subjectCn: cert.commonName ?? '' }));
}

/** A CRL of Intel's PKI; TDX_COLLATERAL_INVALID on any failure. */
export function parseIntelCrl(der: Uint8Array): IntelCrl {
  const crl = parseCrl(der, 'TDX_COLLATERAL_INVALID');
  checkAlgorithm(crl.signatureAlgorithm, 'TDX_COLLATERAL_INVALID');
  return memo(crl, 'intel', () => Object.freeze({ ...crl, issuerCn: crl.issuerCommonName ?? '' }));
}

/** The certificates of a PEM text that must hold nothing else; at most `max`. */
export function intelPemCertificates(pem: string | Uint8Array, code: ErrorCode, max = MAX_CHAIN_CERTS): Buffer[] {
  return pemCertificates(pem, code, { max, nothingAfter: true });
}

/** The PCK chain a quote carries, leaf first, each certificate parsed. */
export function pckChain(pem: string): IntelCertificate[] {
  return intelPemCertificates(pem, 'TDX_CERT_CHAIN_INVALID').map((der) => parseIntelCertificate(der));
}
