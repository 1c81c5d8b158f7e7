/**
 * Certificate chains of the two NVIDIA PKIs: the device identity chain that vouches for a
 * GPU's or NVSwitch's attestation key (leaf "... FMC LF" -> "... BROM" -> provisioner ICA ->
 * "NVIDIA <chip> Identity" -> "NVIDIA Device Identity CA"), and the chain embedded in a RIM
 * (signer "HCC RIM L4 Signer" -> L3 -> "NVIDIA Reference Value <chip> CA" -> "NVIDIA
 * CoRIM signing Root CA"). Same rules for both; the caller picks the error code.
 */
import { verify as cryptoVerify } from 'node:crypto';
import { AttestdError, type ErrorCode } from '../../base/errors.js';
import { parseCertificate, pemCertificates, spkiSha256, MAX_CHAIN_CERTS, type Certificate } from './x509.js';

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

const KNOWN_CRITICAL = new Set(['2.5.29.19', '2.5.29.15']);
const KU_DIGITAL_SIGNATURE = 1 << 0;
const KU_KEY_CERT_SIGN = 1 << 5;

export interface ChainPolicy {
  code: ErrorCode;
  /** "device" or "RIM signing", for messages. */
  what: string;
  /** Root certificates to trust; when absent, a self-signed root in the chain whose key is `pin`. */
  roots?: readonly Certificate[];
  pin: string;
  at: Date;
}

export interface VerifiedChain {
  /** Leaf first, root last (the root appended from `roots` when the chain stopped short). */
  certs: Certificate[];
  leaf: Certificate;
  rootSpkiSha256: string;
}

/** Parses trust anchors given as PEM text (one or more) or DER, each a root certificate. */
export function parseRoots(roots: readonly (string | Uint8Array)[], code: ErrorCode): Certificate[] {
  const out: Certificate[] = [];
  for (const r of roots) {
    const isPem = typeof r === 'string' || Buffer.from(r.subarray(0, 64)).toString('latin1').includes('-----BEGIN');
    const ders = isPem ? pemCertificates(r, code) : [Buffer.from(r)];
    if (ders.length === 0) throw new AttestdError(code, 'a trust anchor holds no certificate');
    for (const der of ders) out.push(parseCertificate(der, code));
  }
  return out;
}

function signedBy(child: Certificate, issuer: Certificate): boolean {
  try {
    return cryptoVerify('sha384', child.tbs, { key: issuer.publicKey, dsaEncoding: 'der' }, child.signature);
  } catch {
    return false;
  }
}

function isSelfSigned(cert: Certificate): boolean {
  return cert.subject.equals(cert.issuer) && signedBy(cert, cert);
}

/** Finds the root: the chain's own last certificate if trusted, else an anchor that issued it. */
function anchor(certs: Certificate[], p: ChainPolicy): { root: Certificate; appended: boolean } {
  const fail: (why: string) => never = (why) => {
    throw new AttestdError(p.code, `${p.what} chain: ${why}`);
  };
  const last = certs[certs.length - 1] ?? fail('no certificates');
  const trusted = p.roots ? p.roots.map(spkiSha256) : [p.pin];
  if (last.subject.equals(last.issuer)) {
    const fp = spkiSha256(last);
    if (!trusted.includes(fp)) fail(`the root "${last.commonName}" (SPKI SHA-256 ${fp}) is not a trusted root`);
    if (!isSelfSigned(last)) fail(`the root "${last.commonName}" is not validly self-signed`);
    return { root: last, appended: false };
  }
  const issuer = p.roots?.find((r) => r.subject.equals(last.issuer) && signedBy(last, r));
  if (!issuer) fail(`"${last.commonName}" is not issued by a trusted root`);
  if (!isSelfSigned(issuer)) fail(`the trusted root "${issuer.commonName}" is not validly self-signed`);
  return { root: issuer, appended: true };
}

function checkCritical(cert: Certificate, p: ChainPolicy): void {
  for (const oid of cert.critical) {
    if (!KNOWN_CRITICAL.has(oid)) throw new AttestdError(p.code, `${p.what} chain: "${cert.commonName}" has the unknown critical extension ${oid}`);
  }
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
  const certs = ders.map((der) => parseCertificate(der, p.code));
  const { root, appended } = anchor(certs, p);
  if (appended) certs.push(root);
  if (certs.length < 2) fail('it holds only the root; the signing certificate is missing');

  const leaf = certs[0] ?? fail('no leaf');
  if (leaf.isCa) fail(`the first certificate "${leaf.commonName}" is a CA, not a signing certificate (the leaf is missing)`);
  if (leaf.keyUsage !== undefined && (leaf.keyUsage & KU_DIGITAL_SIGNATURE) === 0) fail(`the leaf "${leaf.commonName}" may not sign`);
  for (let i = 0; i < certs.length; i++) {
    const cert = certs[i] ?? fail('index');
    checkCritical(cert, p);
    const issuer = certs[i + 1];
    if (!issuer) break;
    if (!cert.issuer.equals(issuer.subject)) {
      fail(`"${cert.commonName}" was not issued by the next certificate "${issuer.commonName}" (an intermediate is missing or out of order)`);
    }
    if (!issuer.isCa) fail(`"${issuer.commonName}" is not a CA`);
    if (issuer.keyUsage !== undefined && (issuer.keyUsage & KU_KEY_CERT_SIGN) === 0) fail(`"${issuer.commonName}" may not sign certificates`);
    // Intermediates between this issuer and the leaf, the leaf itself not counted.
    if (issuer.pathLen !== undefined && i > issuer.pathLen) fail(`"${issuer.commonName}" allows ${issuer.pathLen} intermediates below it, the chain has ${i}`);
    if (!signedBy(cert, issuer)) fail(`the signature on "${cert.commonName}" does not verify with the key of "${issuer.commonName}"`);
  }
  for (const cert of certs) {
    if (p.at < cert.notBefore || p.at > cert.notAfter) {
      throw new AttestdError('COLLATERAL_STALE',
        `${p.what} chain: "${cert.commonName}" is valid ${cert.notBefore.toISOString()} .. ${cert.notAfter.toISOString()}, not at ${p.at.toISOString()}`);
    }
  }
  return { certs, leaf, rootSpkiSha256: spkiSha256(root) };
}
