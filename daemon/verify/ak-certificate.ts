/**
 * Checking an AK certificate: the X.509 certificate an enrolling party issued for an attestd
 * attestation key after credential activation proved the key lives beside a certified EK (see
 * enroll/ak-certificate.ts for the profile). Pure; on the one X.509 layer.
 *
 * The checks, in order; the first that fails throws AK_CERT_INVALID:
 *  1. one well-formed certificate, valid at `at`, not a CA;
 *  2. issued, directly or through the given intermediates, by one of the CA certificates the
 *     caller trusts (the enrolling CA, named explicitly: any of them is an anchor);
 *  3. extKeyUsage includes tcg-kp-AIKCertificate;
 *  4. its public key is the AK's, and its subjectAltName names exactly that AK's TPM name and
 *     one EK certificate digest, which is returned.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { ExtendedKeyUsage, SubjectAlternativeName } from '@peculiar/asn1-x509';
import { AttestdError } from '../base/errors.js';
import type { TpmPublicKey } from './tpm-public.js';
import { parseCertificate, type Certificate } from './x509/certificate.js';
import { validAt } from './x509/chain.js';
import { findPath } from './x509/path.js';
import { looksLikePem, pemCertificates } from './x509/pem.js';

/** Where a host keeps its AK certificate, in the daemon's state folder. */
export const AK_CERT_FILE = 'ak.crt';

/** tcg-kp-AIKCertificate (TCG EK Credential Profile). */
export const AK_CERT_EKU = '2.23.133.8.3';
const AK_NAME_URN = 'urn:attestd:ak-name:';
const EK_CERT_URN = 'urn:attestd:ek-certificate-sha256:';

export const akNameUri = (name: Uint8Array): string => `${AK_NAME_URN}${Buffer.from(name).toString('hex')}`;
export const ekCertUri = (sha256: Uint8Array): string => `${EK_CERT_URN}${Buffer.from(sha256).toString('hex')}`;

export interface VerifiedAkCertificate {
  ekCertificateSha256: Buffer;
  /** SHA-256 fingerprints, the AK certificate first, the trusted CA last. */
  chain: string[];
  notAfter: Date;
}

const invalid = (message: string): never => {
  throw new AttestdError('AK_CERT_INVALID', message);
};

/** Certificates from PEM text or DER bytes. */
export function certificatesOf(input: string | Uint8Array): Certificate[] {
  const ders = typeof input === 'string' || looksLikePem(input) ? pemCertificates(input, 'AK_CERT_INVALID', { max: 16 }) : [Buffer.from(input)];
  if (ders.length === 0) invalid('no certificate given');
  return ders.map((d) => parseCertificate(d, 'AK_CERT_INVALID'));
}

function extension<T>(cert: Certificate, oid: string, type: new () => T, what: string): T | undefined {
  const v = cert.extensions.get(oid);
  if (v === undefined) return undefined;
  try {
    return AsnConvert.parse(v, type);
  } catch {
    return invalid(`the ${what} extension does not decode`);
  }
}

/**
 * Whether `cert` is an AK certificate for `ak` (its key, its TPM name, the AIK usage), its
 * issuer aside: what a host checks before it keeps a certificate it was handed. Returns the
 * leaf, or throws AK_CERT_INVALID.
 */
export function certifiesAk(cert: string | Uint8Array, ak: TpmPublicKey): Certificate {
  const [leaf] = certificatesOf(cert);
  if (!leaf) return invalid('no certificate given');
  checkLeaf(leaf, ak);
  return leaf;
}

/** Checks 3 and 4 on the leaf; returns the EK certificate digest it names. */
function checkLeaf(leaf: Certificate, ak: TpmPublicKey): Buffer {
  if (leaf.isCa) invalid('the AK certificate is a CA certificate');
  const eku = extension(leaf, '2.5.29.37', ExtendedKeyUsage, 'extKeyUsage');
  if (!eku?.includes(AK_CERT_EKU)) invalid('the certificate is not for an attestation key (no tcg-kp-AIKCertificate usage)');
  if (!ak.key.export({ type: 'spki', format: 'der' }).equals(leaf.spki)) invalid('the certificate is for another key than this attestation key');
  const san = extension(leaf, '2.5.29.17', SubjectAlternativeName, 'subjectAltName') ?? [];
  const uris = san.map((g) => g.uniformResourceIdentifier).filter((u): u is string => u !== undefined);
  if (!uris.includes(akNameUri(ak.name))) invalid('the certificate names another AK (its TPM name differs)');
  const ek = uris.filter((u) => u.startsWith(EK_CERT_URN));
  const ekHex = ek.length === 1 ? ek[0]!.slice(EK_CERT_URN.length) : '';
  if (!/^[0-9a-f]{64}$/.test(ekHex)) invalid('the certificate does not name exactly one EK certificate digest');
  return Buffer.from(ekHex, 'hex');
}

export function verifyAkCertificate(cert: string | Uint8Array, trustedCas: readonly Certificate[], intermediates: readonly Certificate[],
  ak: TpmPublicKey, at: Date): VerifiedAkCertificate {
  const [leaf, ...extra] = certificatesOf(cert);
  if (!leaf) return invalid('no certificate given');
  if (!validAt(leaf, at)) invalid(`the AK certificate is not valid at ${at.toISOString()} (${leaf.notBefore.toISOString()} to ${leaf.notAfter.toISOString()})`);
  const anchors = new Set(trustedCas.map((c) => c.sha256));
  const found = findPath(leaf, [...trustedCas, ...intermediates, ...extra], {
    anchor: (c) => anchors.has(c.sha256), at, maxDepth: 4, maxChecks: 64, code: 'AK_CERT_INVALID',
    tooMany: 'the certificates given need too many signature checks',
  });
  if ('failure' in found) invalid(`the AK certificate does not chain to the enrolling CA (${found.failure?.kind ?? 'no issuer among the CA certificates'})`);
  const ekCertificateSha256 = checkLeaf(leaf, ak);
  const path = (found as { path: Certificate[] }).path;
  return { ekCertificateSha256, chain: path.map((c) => c.sha256), notAfter: leaf.notAfter };
}
