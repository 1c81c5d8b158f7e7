/**
 * Verification of a TPM endorsement key (EK) certificate against a bundle of TPM vendor CAs.
 * Pure: no I/O; the caller loads the bundle.
 *
 * EK certificates follow the TCG EK Credential Profile, not the web PKI: the subject is often
 * empty and the subjectAltName, marked critical, holds a directoryName with the TPM's
 * manufacturer, model and firmware version (OIDs 2.23.133.2.1, .2, .3); a Subject Directory
 * Attributes extension carries the TPM specification it implements (2.23.133.2.16). Strict
 * validators reject such certificates; this one accepts them, and reads those fields after
 * the signatures have verified. The certificates are parsed by x509/ as OpenSSL reads them
 * (some vendors' are not strict DER), and the chain is searched for as OpenSSL's
 * X509_check_issued() links certificates (x509/path.ts).
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import { AttestdError } from '../base/errors.js';
import { MAX_EK_CERT_BYTES, tpmInfo, type TpmDeviceInfo } from './ek-cert-fields.js';
import { parseCertificate, type Certificate } from './x509/certificate.js';
import { maySignCertificates, validAt } from './x509/chain.js';
import { findPath, isSelfSignedRoot, type PathStep } from './x509/path.js';
import { looksLikePem, pemCertificates } from './x509/pem.js';
import { certificateText } from './x509/text.js';

export { readTpmInfo, type TpmDeviceInfo } from './ek-cert-fields.js';

/** A CA certificate as PEM text (one or more blocks), DER bytes, or already parsed by node. */
export type CaInput = string | Uint8Array | X509Certificate;

export interface VerifiedEkCertificate {
  /** Subject and issuer of the EK certificate, one line, "C=DE, O=..." (may be empty). */
  subject: string;
  issuer: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  /** Subjects from the EK certificate up to the trust anchor, EK certificate first. */
  chain: string[];
  /** SHA-256 fingerprints (hex) of the same certificates, same order. */
  fingerprints: string[];
  /** The endorsement key the certificate binds. */
  publicKey: KeyObject;
  tpm: TpmDeviceInfo;
}

/** Bounds on what a caller's bundle and a certificate's issuers may make us do. */
export const MAX_BUNDLE_CERTS = 1024;
export const MAX_CHAIN_DEPTH = 8;
const MAX_PEM_CHARS = 4 << 20;
const MAX_SIGNATURE_CHECKS = 4096;

function invalid(message: string, cause?: unknown): AttestdError {
  return new AttestdError('EK_CERT_INVALID', message, cause === undefined ? undefined : { cause });
}

/** Subject, issuer and serial as OpenSSL spells them. */
const text = (c: Certificate) => certificateText(c, 'EK_CERT_INVALID');

/**
 * Parses a CA bundle: PEM strings (or PEM bytes) may hold several certificates, DER bytes
 * one. Throws EK_CERT_INVALID naming the entry that does not parse, or when the bundle holds
 * more than MAX_BUNDLE_CERTS certificates.
 */
export function parseCaBundle(items: readonly CaInput[]): Certificate[] {
  const out: Certificate[] = [];
  const add = (c: Certificate): void => {
    if (out.length >= MAX_BUNDLE_CERTS) throw invalid(`the CA bundle holds more than ${MAX_BUNDLE_CERTS} certificates`);
    out.push(c);
  };
  items.forEach((item, i) => {
    if (!(typeof item === 'string' || item instanceof Uint8Array)) {
      add(parseDer(item.raw, `CA bundle entry ${i}`));
      return;
    }
    if (typeof item !== 'string' && !looksLikePem(item)) {
      add(parseDer(item, `CA bundle entry ${i}`));
      return;
    }
    if (item.length > MAX_PEM_CHARS) throw invalid(`CA bundle entry ${i} is larger than ${MAX_PEM_CHARS} characters`);
    let blocks: Buffer[];
    try {
      blocks = pemCertificates(item, 'EK_CERT_INVALID', { max: MAX_BUNDLE_CERTS, maxChars: MAX_PEM_CHARS });
    } catch (err) {
      throw invalid(`CA bundle entry ${i}: ${(err as Error).message}`, err);
    }
    blocks.forEach((der, found) => add(parseDer(der, `CA bundle entry ${i}, certificate ${found}`)));
    if (blocks.length === 0) throw invalid(`CA bundle entry ${i} holds no PEM certificate`);
  });
  return out;
}

/**
 * Verifies an EK certificate (DER) against `caBundle` at time `at`. The checks, in order; the
 * first that fails throws EK_CERT_INVALID (INVALID_ARGUMENT for a bad `at`):
 *  1. `der` is exactly one well-formed X.509 certificate, nothing before or after it;
 *  2. every bundle entry parses (see parseCaBundle);
 *  3. the certificate is valid at `at` and is not a CA certificate;
 *  4. a chain exists from it to a self-signed root in the bundle (an intermediate is never an
 *     anchor: a bundle that lacks the vendor's root does not verify, so a CA certificate
 *     dropped into the folder cannot vouch for EKs on its own authority): each link's issuer
 *     name (and key identifier, where present) matches, the issuer is a CA allowed to sign certificates, its signature
 *     over the child verifies, and it is valid at `at`; a root's self-signature verifies too;
 *     at most MAX_CHAIN_DEPTH links;
 *  5. the subjectAltName and Subject Directory Attributes, when present, are well-formed DER;
 *     the TPM fields found in them are returned.
 * Not checked: revocation, name constraints, path length constraints, and the extended key
 * usage (EK certificates and vTPM AK certificates differ there); these are policy's.
 */
export function verifyEkCertificate(
  der: Uint8Array,
  caBundle: readonly CaInput[],
  at: Date,
): VerifiedEkCertificate {
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new AttestdError('INVALID_ARGUMENT', '`at` must be a valid Date');
  const leaf = parseDer(der, 'the EK certificate');
  const bundle = parseCaBundle(caBundle);
  if (!validAt(leaf, at)) {
    throw invalid(
      `the EK certificate is not valid at ${at.toISOString()} (${leaf.notBefore.toISOString()} to ${leaf.notAfter.toISOString()}, "${text(leaf).subject}")`,
    );
  }
  if (maySignCertificates(leaf)) throw invalid('the EK certificate is a CA certificate');

  const found = findPath(leaf, bundle, {
    anchor: isSelfSignedRoot,
    at,
    maxDepth: MAX_CHAIN_DEPTH,
    maxChecks: MAX_SIGNATURE_CHECKS,
    code: 'EK_CERT_INVALID',
    tooMany: 'the CA bundle needs too many signature checks to build a chain',
  });
  if ('failure' in found) throw invalid(`the EK certificate does not chain to the CA bundle: ${why(leaf, found.failure, at)}`);
  const path = found.path;
  const tpm = tpmInfo(leaf);
  const publicKey = leaf.publicKey;
  if (!publicKey) throw invalid('the EK certificate public key does not decode');
  return {
    subject: text(leaf).subject,
    issuer: text(leaf).issuer,
    serialNumber: text(leaf).serialNumber,
    notBefore: leaf.notBefore,
    notAfter: leaf.notAfter,
    chain: path.map((c) => text(c).subject),
    fingerprints: path.map((c) => c.sha256),
    publicKey,
    tpm,
  };
}

/** The most telling reason the search found no path. */
function why(leaf: Certificate, step: PathStep | undefined, at: Date): string {
  switch (step?.kind) {
    case undefined:
      return `no certificate in the CA bundle issued "${text(leaf).issuer}"`;
    case 'not-ca':
      return `"${text(step.issuer).subject}" is not a CA certificate`;
    case 'signature':
      return `the signature of "${text(step.child).subject}" does not verify with "${text(step.issuer).subject}"`;
    case 'not-valid': {
      const c = step.issuer;
      return `"${text(c).subject}" is not valid at ${at.toISOString()} (${c.notBefore.toISOString()} to ${c.notAfter.toISOString()})`;
    }
    case 'too-deep':
      return `no root within ${MAX_CHAIN_DEPTH} certificates`;
    case 'no-root':
      return `the chain ends at "${text(step.last).subject}", which is not a self-signed root, and its issuer is not in the CA bundle`;
  }
}

function parseDer(bytes: Uint8Array, what: string): Certificate {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw invalid(`${what} is empty or not bytes`);
  try {
    // BER as OpenSSL reads it: vendors issue EK certificates that are not strict DER.
    return parseCertificate(bytes, 'EK_CERT_INVALID', { encoding: 'ber', maxBytes: MAX_EK_CERT_BYTES });
  } catch (err) {
    throw invalid(`${what} is not an X.509 certificate: ${(err as Error).message}`, err);
  }
}
