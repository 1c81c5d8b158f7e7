/**
 * The checks a certificate chain is made of, one link at a time: the child names the issuer,
 * the issuer may issue certificates (CA, keyCertSign, path length), the issuer's key signed
 * the child, each certificate is valid at the verification time. Which of them a chain needs,
 * in which order, and what its failures say, is the verifier's: AMD's, Intel's and NVIDIA's
 * chains are fixed lists walked leaf to root (names byte for byte), TPM EK chains are searched
 * for in a bundle (names as OpenSSL compares them; see path.ts).
 */
import type { Certificate } from './certificate.js';
import { KEY_USAGE } from './extensions.js';
import { verifySignature, type SignatureScheme } from './signature.js';

/** What a signature check needs of the signed object: certificates and CRLs both have it. */
export interface Signed {
  readonly tbs: Uint8Array;
  readonly signature: Uint8Array;
  readonly scheme: SignatureScheme;
}

/** Whether the key of `issuer` signed `child` (its TBS bytes, with its signature scheme). */
export function signedBy(child: Signed, issuer: Pick<Certificate, 'publicKey'>): boolean {
  return verifySignature(child.scheme, child.tbs, child.signature, issuer.publicKey);
}

/** Subject and issuer are the same bytes. */
export function isSelfIssued(cert: Pick<Certificate, 'subject' | 'issuer'>): boolean {
  return cert.subject.equals(cert.issuer);
}

/** Self-issued, and its own key verifies its signature. */
export function isSelfSigned(cert: Certificate): boolean {
  return isSelfIssued(cert) && signedBy(cert, cert);
}

export function validAt(cert: Pick<Certificate, 'notBefore' | 'notAfter'>, at: Date): boolean {
  return at >= cert.notBefore && at <= cert.notAfter;
}

/** The first certificate not valid at `at`, if any. */
export function firstInvalidAt<C extends Pick<Certificate, 'notBefore' | 'notAfter'>>(certs: readonly C[], at: Date): C | undefined {
  return certs.find((c) => !validAt(c, at));
}

/** keyUsage, when present, has all of `bits`; absent, it restricts nothing. */
export function keyUsageAllows(cert: Pick<Certificate, 'keyUsage'>, bits: number): boolean {
  return cert.keyUsage === undefined || (cert.keyUsage & bits) === bits;
}

/** A CA whose keyUsage, if any, allows signing certificates (OpenSSL's X509_check_ca() == 1). */
export function maySignCertificates(cert: Pick<Certificate, 'isCa' | 'keyUsage'>): boolean {
  return cert.isCa && keyUsageAllows(cert, KEY_USAGE.KEY_CERT_SIGN);
}

/** The first critical extension not in `known`, if any. */
export function unknownCritical(cert: Pick<Certificate, 'critical'>, known: ReadonlySet<string>): string | undefined {
  for (const oid of cert.critical) if (!known.has(oid)) return oid;
  return undefined;
}

export type LinkProblem = 'issuer-name' | 'not-ca' | 'no-cert-sign' | 'path-length';

export interface LinkRules {
  /** Refuse an issuer whose keyUsage lacks keyCertSign. */
  keyUsage: boolean;
  /** Refuse an issuer whose pathLenConstraint is exceeded. */
  pathLength: boolean;
}

/**
 * What is wrong with `issuer` having issued `child` apart from the signature, if anything, in
 * the order checked: the child's issuer name is the issuer's subject (byte for byte); the
 * issuer is a CA; it may sign certificates; `below` intermediates between it and the leaf
 * (the leaf not counted) are within its path length.
 */
export function linkProblem(child: Certificate, issuer: Certificate, below: number, rules: LinkRules): LinkProblem | undefined {
  if (!child.issuer.equals(issuer.subject)) return 'issuer-name';
  if (!issuer.isCa) return 'not-ca';
  if (rules.keyUsage && !keyUsageAllows(issuer, KEY_USAGE.KEY_CERT_SIGN)) return 'no-cert-sign';
  if (rules.pathLength && issuer.pathLen !== undefined && below > issuer.pathLen) return 'path-length';
  return undefined;
}
