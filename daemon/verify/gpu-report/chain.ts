/**
 * Certificate chains of the two NVIDIA PKIs: the device identity chain that vouches for a
 * GPU's or NVSwitch's attestation key (leaf "... FMC LF" -> "... BROM" -> provisioner ICA ->
 * "NVIDIA <chip> Identity" -> "NVIDIA Device Identity CA"), and the chain embedded in a RIM
 * (signer "HCC RIM L4 Signer" -> L3 -> "NVIDIA Reference Value <chip> CA" -> "NVIDIA
 * CoRIM signing Root CA"). Same rules for both; the caller picks the error code. The
 * certificates are parsed (once per process) by x509/; NVIDIA's profile is checked here:
 * ECDSA P-384 keys, signed with ecdsa-with-SHA384.
 */
import type { KeyObject } from 'node:crypto';
import { AttestdError, type ErrorCode } from '../../base/errors.js';
import { parseCertificate, spkiSha256, type Certificate } from '../x509/certificate.js';
import { isSelfIssued, isSelfSigned, keyUsageAllows, linkProblem, signedBy, unknownCritical, validAt } from '../x509/chain.js';
import { EXT_OID, KEY_USAGE } from '../x509/extensions.js';
import { looksLikePem, pemCertificates } from '../x509/pem.js';
import { SIG_OID } from '../x509/signature.js';

/**
 * SHA-256 of the SubjectPublicKeyInfo of "NVIDIA Device Identity CA" (P-384), the root of
 * every device chain; recompute from shared/fixtures/nvidia/attestation/
 * nvidia_device_identity_root_ca.pem with `openssl x509 -pubkey -noout | openssl pkey
 * -pubin -outform der | sha256sum`.
 */
export const NVIDIA_DEVICE_ROOT_SPKI_SHA256 = 'a90c4eb5acfd3e3d03a25db6a26b84f720ad0503196c627c21ddd48dd85b06a4';

/**
 * SHA-256 of the SubjectPublicKeyInfo of "NVIDIA CoRIM signing Root CA", the root of RIM
 * signing chains; from shared/fixtures/nvidia/rim/nvidia_corim_signing_root_ca.pem.
 */
export const NVIDIA_RIM_ROOT_SPKI_SHA256 = 'dec1dc316477aa851eebdf51327ae9f864bc8d89254657ed1e7eb9168af1e1a3';

export const MAX_CHAIN_CERTS = 8;
/** A device chain is five certificates under 1 KiB each; the cap keeps hostile input cheap. */
const MAX_PEM_CHARS = 256 * 1024;
const KNOWN_CRITICAL = new Set<string>([EXT_OID.BASIC_CONSTRAINTS, EXT_OID.KEY_USAGE]);

/** A certificate that passed NVIDIA's profile, so its key is there. */
export type NvidiaCertificate = Certificate & { readonly publicKey: KeyObject };

/** The subject common name, for messages and output only. */
export function commonNameOf(cert: Certificate): string {
  return (cert.commonName ?? '').slice(0, 128);
}

/** A certificate of NVIDIA's PKIs: X.509 v3 (or v1), ecdsa-with-SHA384, an ECDSA P-384 key. */
export function parseNvidiaCertificate(der: Uint8Array, code: ErrorCode): NvidiaCertificate {
  const cert = parseCertificate(der, code);
  const fail = (why: string): never => {
    throw new AttestdError(code, why);
  };
  if (cert.signatureAlgorithm !== SIG_OID.ECDSA_SHA384 || cert.scheme.kind !== 'ecdsa') fail('the certificate is not signed with ecdsa-with-SHA384');
  if (cert.version === 2) fail('the certificate is not X.509 v3');
  const key = cert.publicKey ?? fail('the certificate public key does not decode');
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'secp384r1') fail('the certificate key is not ECDSA P-384');
  return cert as NvidiaCertificate;
}

/** The DER certificates of a PEM chain, in order; at most MAX_CHAIN_CERTS. */
export function nvidiaPemCertificates(pem: string | Uint8Array, code: ErrorCode): Buffer[] {
  return pemCertificates(pem, code, { max: MAX_CHAIN_CERTS, maxChars: MAX_PEM_CHARS });
}

export interface ChainPolicy {
  code: ErrorCode;
  /** "device" or "RIM signing", for messages. */
  what: string;
  /** Root certificates to trust; when absent, a self-signed root in the chain whose key is `pin`. */
  roots?: readonly NvidiaCertificate[];
  pin: string;
  at: Date;
}

export interface VerifiedChain {
  /** Leaf first, root last (the root appended from `roots` when the chain stopped short). */
  certs: NvidiaCertificate[];
  leaf: NvidiaCertificate;
  rootSpkiSha256: string;
}

/** Parses trust anchors given as PEM text (one or more) or DER, each a root certificate. */
export function parseRoots(roots: readonly (string | Uint8Array)[], code: ErrorCode): NvidiaCertificate[] {
  const out: NvidiaCertificate[] = [];
  for (const r of roots) {
    const ders = looksLikePem(r) ? nvidiaPemCertificates(r, code) : [Buffer.from(r as Uint8Array)];
    if (ders.length === 0) throw new AttestdError(code, 'a trust anchor holds no certificate');
    for (const der of ders) out.push(parseNvidiaCertificate(der, code));
  }
  return out;
}

/** Finds the root: the chain's own last certificate if trusted, else an anchor that issued it. */
function anchor(certs: NvidiaCertificate[], p: ChainPolicy): { root: NvidiaCertificate; appended: boolean } {
  const fail: (why: string) => never = (why) => {
    throw new AttestdError(p.code, `${p.what} chain: ${why}`);
  };
  const last = certs[certs.length - 1] ?? fail('no certificates');
  const trusted = p.roots ? p.roots.map(spkiSha256) : [p.pin];
  if (isSelfIssued(last)) {
    const fp = spkiSha256(last);
    if (!trusted.includes(fp)) fail(`the root "${commonNameOf(last)}" (SPKI SHA-256 ${fp}) is not a trusted root`);
    if (!isSelfSigned(last)) fail(`the root "${commonNameOf(last)}" is not validly self-signed`);
    return { root: last, appended: false };
  }
  const issuer = p.roots?.find((r) => r.subject.equals(last.issuer) && signedBy(last, r));
  if (!issuer) fail(`"${commonNameOf(last)}" is not issued by a trusted root`);
  if (!isSelfSigned(issuer)) fail(`the trusted root "${commonNameOf(issuer)}" is not validly self-signed`);
  return { root: issuer, appended: true };
}

/**
 * Checks a chain given leaf first: it reaches a trusted root; every certificate is signed
 * by the next (ECDSA P-384, SHA-384) and names it as issuer; every issuer is a CA allowed to
 * sign certificates, within its path length; the leaf is not a CA and may sign; no unknown
 * critical extension; all certificates are valid at `at` (COLLATERAL_STALE otherwise).
 */
export function verifyChain(ders: readonly Uint8Array[], p: ChainPolicy): VerifiedChain {
  const fail: (why: string) => never = (why) => {
    throw new AttestdError(p.code, `${p.what} chain: ${why}`);
  };
  if (ders.length === 0) fail('no certificates');
  if (ders.length > MAX_CHAIN_CERTS) fail(`more than ${MAX_CHAIN_CERTS} certificates`);
  const certs = ders.map((der) => parseNvidiaCertificate(der, p.code));
  const { root, appended } = anchor(certs, p);
  if (appended) certs.push(root);
  if (certs.length < 2) fail('it holds only the root; the signing certificate is missing');

  const leaf = certs[0] ?? fail('no leaf');
  if (leaf.isCa) fail(`the first certificate "${commonNameOf(leaf)}" is a CA, not a signing certificate (the leaf is missing)`);
  if (!keyUsageAllows(leaf, KEY_USAGE.DIGITAL_SIGNATURE)) fail(`the leaf "${commonNameOf(leaf)}" may not sign`);
  for (let i = 0; i < certs.length; i++) {
    const cert = certs[i] ?? fail('index');
    const critical = unknownCritical(cert, KNOWN_CRITICAL);
    if (critical) fail(`"${commonNameOf(cert)}" has the unknown critical extension ${critical}`);
    const issuer = certs[i + 1];
    if (!issuer) break;
    // Intermediates between this issuer and the leaf, the leaf itself not counted.
    switch (linkProblem(cert, issuer, i, { keyUsage: true, pathLength: true })) {
      case 'issuer-name':
        fail(`"${commonNameOf(cert)}" was not issued by the next certificate "${commonNameOf(issuer)}" (an intermediate is missing or out of order)`);
        break;
      case 'not-ca':
        fail(`"${commonNameOf(issuer)}" is not a CA`);
        break;
      case 'no-cert-sign':
        fail(`"${commonNameOf(issuer)}" may not sign certificates`);
        break;
      case 'path-length':
        fail(`"${commonNameOf(issuer)}" allows ${issuer.pathLen} intermediates below it, the chain has ${i}`);
        break;
    }
    if (!signedBy(cert, issuer)) fail(`the signature on "${commonNameOf(cert)}" does not verify with the key of "${commonNameOf(issuer)}"`);
  }
  for (const cert of certs) {
    if (!validAt(cert, p.at)) {
      throw new AttestdError('COLLATERAL_STALE',
        `${p.what} chain: "${commonNameOf(cert)}" is valid ${cert.notBefore.toISOString()} .. ${cert.notAfter.toISOString()}, not at ${p.at.toISOString()}`);
    }
  }
  return { certs, leaf, rootSpkiSha256: spkiSha256(root) };
}
