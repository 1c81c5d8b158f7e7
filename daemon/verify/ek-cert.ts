/**
 * Verification of a TPM endorsement key (EK) certificate against a bundle of TPM vendor CAs.
 * Pure: no I/O; the caller loads the bundle.
 *
 * EK certificates follow the TCG EK Credential Profile, not the web PKI: the subject is often
 * empty and the subjectAltName, marked critical, holds a directoryName with the TPM's
 * manufacturer, model and firmware version (OIDs 2.23.133.2.1, .2, .3); a Subject Directory
 * Attributes extension carries the TPM specification it implements (2.23.133.2.16). Strict
 * validators reject such certificates; this one accepts them and reads those fields with a
 * bounded DER reader, after the signatures have verified.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { AttestdError } from '../base/errors.js';
import { readTpmInfo, validity, type TpmDeviceInfo } from './ek-cert-fields.js';
import { Der } from './der.js';

export { readTpmInfo, type TpmDeviceInfo } from './ek-cert-fields.js';

/** A CA certificate as PEM text (one or more blocks), DER bytes, or already parsed. */
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

export interface EkVerifyOptions {
  /**
   * End the chain at any CA certificate of the bundle, not only at a self-signed root. For
   * bundles of vendor intermediates whose root is not distributed or is cross-signed by a
   * root not in the bundle. Off by default: every certificate in the bundle is then trusted
   * as much as a root.
   */
  trustIntermediates?: boolean;
}

/** Bounds on what a caller's bundle and a certificate's issuers may make us do. */
export const MAX_BUNDLE_CERTS = 1024;
export const MAX_CHAIN_DEPTH = 8;
const MAX_PEM_CHARS = 4 << 20;
const MAX_SIGNATURE_CHECKS = 4096;

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/g;

function invalid(message: string, cause?: unknown): AttestdError {
  return new AttestdError('EK_CERT_INVALID', message, cause === undefined ? undefined : { cause });
}

/**
 * Parses a CA bundle: PEM strings (or PEM bytes) may hold several certificates, DER bytes
 * one. Throws EK_CERT_INVALID naming the entry that does not parse, or when the bundle holds
 * more than MAX_BUNDLE_CERTS certificates.
 */
export function parseCaBundle(items: readonly CaInput[]): X509Certificate[] {
  const out: X509Certificate[] = [];
  const add = (c: X509Certificate): void => {
    if (out.length >= MAX_BUNDLE_CERTS) throw invalid(`the CA bundle holds more than ${MAX_BUNDLE_CERTS} certificates`);
    out.push(c);
  };
  items.forEach((item, i) => {
    if (item instanceof X509Certificate) {
      add(item);
      return;
    }
    const text = typeof item === 'string' ? item : looksLikePem(item) ? Buffer.from(item).toString('latin1') : undefined;
    if (text === undefined) {
      add(parseDer(item as Uint8Array, `CA bundle entry ${i}`));
      return;
    }
    if (text.length > MAX_PEM_CHARS) throw invalid(`CA bundle entry ${i} is larger than ${MAX_PEM_CHARS} characters`);
    let found = 0;
    for (const m of text.matchAll(PEM_BLOCK)) {
      add(parseDer(Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'), `CA bundle entry ${i}, certificate ${found}`));
      found++;
    }
    if (found === 0) throw invalid(`CA bundle entry ${i} holds no PEM certificate`);
  });
  return out;
}

/**
 * Verifies an EK certificate (DER) against `caBundle` at time `at`. The checks, in order; the
 * first that fails throws EK_CERT_INVALID (INVALID_ARGUMENT for a bad `at`):
 *  1. `der` is exactly one well-formed X.509 certificate, nothing before or after it;
 *  2. every bundle entry parses (see parseCaBundle);
 *  3. the certificate is valid at `at` and is not a CA certificate;
 *  4. a chain exists from it to a self-signed root in the bundle (or, with
 *     `trustIntermediates`, to any bundle CA): each link's issuer name (and key identifier,
 *     where present) matches, the issuer is a CA allowed to sign certificates, its signature
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
  options: EkVerifyOptions = {},
): VerifiedEkCertificate {
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new AttestdError('INVALID_ARGUMENT', '`at` must be a valid Date');
  const leaf = parseDer(der, 'the EK certificate');
  const bundle = parseCaBundle(caBundle);
  const leafValidity = validity(leaf);
  checkValidAt(leaf, leafValidity, at, 'the EK certificate');
  if (leaf.ca) throw invalid('the EK certificate is a CA certificate');

  const path = findChain(leaf, bundle, at, options.trustIntermediates === true);
  const tpm = readTpmInfo(leaf.raw);
  return {
    subject: oneLine(leaf.subject),
    issuer: oneLine(leaf.issuer),
    serialNumber: leaf.serialNumber,
    notBefore: leafValidity.notBefore,
    notAfter: leafValidity.notAfter,
    chain: path.map((c) => oneLine(c.subject)),
    fingerprints: path.map((c) => c.fingerprint256.replace(/:/g, '').toLowerCase()),
    publicKey: leaf.publicKey,
    tpm,
  };
}

/** Depth-first search for a trusted path; the most telling failure becomes the message. */
function findChain(leaf: X509Certificate, bundle: X509Certificate[], at: Date, trustIntermediates: boolean): X509Certificate[] {
  let budget = MAX_SIGNATURE_CHECKS;
  let why = `no certificate in the CA bundle issued "${oneLine(leaf.issuer)}"`;
  const walk = (cert: X509Certificate, path: X509Certificate[]): X509Certificate[] | undefined => {
    for (const issuer of bundle) {
      if (path.some((p) => p.fingerprint256 === issuer.fingerprint256)) continue;
      if (!cert.checkIssued(issuer)) continue;
      const name = oneLine(issuer.subject);
      if (budget-- <= 0) throw invalid('the CA bundle needs too many signature checks to build a chain');
      if (!issuer.ca) {
        why = `"${name}" is not a CA certificate`;
        continue;
      }
      if (!verifiesWith(cert, issuer)) {
        why = `the signature of "${oneLine(cert.subject)}" does not verify with "${name}"`;
        continue;
      }
      const v = validity(issuer);
      if (at < v.notBefore || at > v.notAfter) {
        why = `"${name}" is not valid at ${at.toISOString()} (${v.notBefore.toISOString()} to ${v.notAfter.toISOString()})`;
        continue;
      }
      const next = [...path, issuer];
      if (isSelfSigned(issuer) || trustIntermediates) return next;
      if (next.length > MAX_CHAIN_DEPTH) {
        why = `no root within ${MAX_CHAIN_DEPTH} certificates`;
        continue;
      }
      const found = walk(issuer, next);
      if (found !== undefined) return found;
      if (why.startsWith('no certificate in the CA bundle issued')) {
        why = `the chain ends at "${name}", which is not a self-signed root, and its issuer is not in the CA bundle`;
      }
    }
    return undefined;
  };
  const path = walk(leaf, [leaf]);
  if (path === undefined) throw invalid(`the EK certificate does not chain to the CA bundle: ${why}`);
  return path;
}

function isSelfSigned(c: X509Certificate): boolean {
  return c.checkIssued(c) && verifiesWith(c, c);
}

function verifiesWith(c: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return c.verify(issuer.publicKey);
  } catch {
    // An issuer key of a type OpenSSL cannot use for this signature.
    return false;
  }
}

function parseDer(bytes: Uint8Array, what: string): X509Certificate {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw invalid(`${what} is empty or not bytes`);
  // The whole input must be one element: node would ignore what follows it.
  new Der(bytes, 'EK_CERT_INVALID').root();
  try {
    return new X509Certificate(Buffer.from(bytes));
  } catch (err) {
    throw invalid(`${what} is not an X.509 certificate: ${(err as Error).message}`, err);
  }
}

function looksLikePem(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.subarray(0, 64)).toString('latin1').includes('-----BEGIN');
}

function checkValidAt(c: X509Certificate, v: { notBefore: Date; notAfter: Date }, at: Date, what: string): void {
  if (at < v.notBefore || at > v.notAfter) {
    throw invalid(
      `${what} is not valid at ${at.toISOString()} (${v.notBefore.toISOString()} to ${v.notAfter.toISOString()}, "${oneLine(c.subject)}")`,
    );
  }
}

/** Node leaves a name it cannot print undefined, despite its type. */
function oneLine(name: string | undefined): string {
  return typeof name === 'string' ? name.split('\n').join(', ') : '';
}
