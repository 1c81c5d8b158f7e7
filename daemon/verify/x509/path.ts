/**
 * Building a path through a bundle of CA certificates, for chains whose intermediates come in
 * any order and number (TPM EK certificates and their vendors' CAs). An issuer candidate is
 * judged as OpenSSL's X509_check_issued() judges it, which is how these chains were checked
 * before: names equal as X509_NAME_cmp compares them, the authority key identifier (where
 * present) names the issuer's key, serial and name, the child's signature algorithm is one
 * for the issuer's key type, and the issuer's keyUsage (where present) allows keyCertSign.
 * Then the issuer must be a CA, its signature over the child verify, and it be valid at the
 * verification time. The search is depth first, bounded in depth and in signature checks.
 */
import type { ErrorCode } from '../../base/errors.js';
import { AttestdError } from '../../base/errors.js';
import { Asn1Reader } from './asn1.js';
import { memo } from './cache.js';
import type { Certificate } from './certificate.js';
import { keyUsageAllows, maySignCertificates, signedBy, validAt } from './chain.js';
import { KEY_USAGE, keyIdentifiers, type KeyIdentifiers } from './extensions.js';
import { nameKey } from './name.js';
import { keyTypesOf } from './signature.js';

function subjectKey(cert: Certificate): string {
  return memo(cert, 'subject-name-key', () => nameKey(cert.subjectName));
}

function issuerKey(cert: Certificate): string {
  return memo(cert, 'issuer-name-key', () => nameKey(cert.issuerName));
}

/** Key identifiers, or undefined when they do not decode (OpenSSL then matches nothing). */
function keyIds(cert: Certificate): KeyIdentifiers | undefined {
  return memo(cert, 'key-identifiers', () => {
    try {
      return keyIdentifiers(new Asn1Reader('INVALID_ARGUMENT'), cert.extensions);
    } catch (err) {
      if (err instanceof AttestdError) return undefined;
      throw err;
    }
  });
}

/** OpenSSL's X509_check_issued(issuer, child) == X509_V_OK. */
export function likelyIssuedBy(child: Certificate, issuer: Certificate): boolean {
  if (issuerKey(child) !== subjectKey(issuer)) return false;
  const childIds = keyIds(child);
  const issuerIds = keyIds(issuer);
  if (!childIds || !issuerIds) return false;
  const akid = childIds.authority;
  if (akid) {
    if (akid.keyId && issuerIds.subjectKeyId && !akid.keyId.equals(issuerIds.subjectKeyId)) return false;
    if (akid.serial && !akid.serial.equals(issuer.serial)) return false;
    const named = akid.issuers[0];
    if (named && nameKey(named) !== issuerKey(issuer)) return false;
  }
  const keyType = issuer.publicKey?.asymmetricKeyType;
  if (keyType === undefined || !keyTypesOf(child.scheme).includes(keyType)) return false;
  return keyUsageAllows(issuer, KEY_USAGE.KEY_CERT_SIGN);
}

/** Issued by itself in that sense, and its own key verifies its signature. */
export function isSelfSignedRoot(cert: Certificate): boolean {
  return likelyIssuedBy(cert, cert) && signedBy(cert, cert);
}

/** Why a candidate issuer was passed over; the search reports the last one it met. */
export type PathStep =
  | { kind: 'not-ca'; issuer: Certificate }
  | { kind: 'signature'; child: Certificate; issuer: Certificate }
  | { kind: 'not-valid'; issuer: Certificate }
  | { kind: 'too-deep' }
  | { kind: 'no-root'; last: Certificate };

export interface PathSearch {
  /** Accept a path ending at this issuer (a root, or any CA when intermediates are anchors). */
  anchor: (issuer: Certificate) => boolean;
  at: Date;
  /** Certificates after the leaf, at most. */
  maxDepth: number;
  /** Signature checks, at most, before the search gives up with `code`. */
  maxChecks: number;
  code: ErrorCode;
  /** The message when the budget runs out. */
  tooMany: string;
}

/**
 * A path from `leaf` through `pool` to an anchor, leaf first; or, when there is none, the
 * most telling reason (undefined when no certificate in the pool issued the leaf at all).
 */
export function findPath(leaf: Certificate, pool: readonly Certificate[], s: PathSearch): { path: Certificate[] } | { failure: PathStep | undefined } {
  let budget = s.maxChecks;
  let failure: PathStep | undefined;
  const walk = (cert: Certificate, path: Certificate[]): Certificate[] | undefined => {
    for (const issuer of pool) {
      if (path.some((p) => p.sha256 === issuer.sha256)) continue;
      if (!likelyIssuedBy(cert, issuer)) continue;
      if (budget-- <= 0) throw new AttestdError(s.code, s.tooMany);
      if (!maySignCertificates(issuer)) {
        failure = { kind: 'not-ca', issuer };
        continue;
      }
      if (!signedBy(cert, issuer)) {
        failure = { kind: 'signature', child: cert, issuer };
        continue;
      }
      if (!validAt(issuer, s.at)) {
        failure = { kind: 'not-valid', issuer };
        continue;
      }
      const next = [...path, issuer];
      if (s.anchor(issuer)) return next;
      if (next.length > s.maxDepth) {
        failure = { kind: 'too-deep' };
        continue;
      }
      const found = walk(issuer, next);
      if (found !== undefined) return found;
      if (failure === undefined) failure = { kind: 'no-root', last: issuer };
    }
    return undefined;
  };
  const path = walk(leaf, [leaf]);
  return path ? { path } : { failure };
}
