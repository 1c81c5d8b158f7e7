/**
 * The AMD key hierarchy: ARK (self-signed root) -> ASK -> VCEK, or ARK -> ASVK -> VLEK,
 * one hierarchy per product (Milan, Genoa, Turin). Every link is RSASSA-PSS with SHA-384,
 * MGF1-SHA-384 and a 48-byte salt. The ARK is trusted only if its public key is one of the
 * pinned AMD roots, or one the caller passes explicitly. The certificates are parsed (once
 * per process) by x509/; AMD's profile of them is checked here.
 */
import type { KeyObject } from 'node:crypto';
import { AttestdError } from '../../base/errors.js';
import { parseCertificate, spkiSha256, type Certificate } from '../x509/certificate.js';
import { linkProblem, signedBy, unknownCritical } from '../x509/chain.js';
import { EXT_OID } from '../x509/extensions.js';
import { commonNames } from '../x509/name.js';
import { SIG_OID } from '../x509/signature.js';
import { productOfName } from './tcb.js';
import type { SnpProduct, SnpSigningKey } from './types.js';

/**
 * SHA-256 of each ARK's SubjectPublicKeyInfo (DER). Taken from the ARKs in AMD's KDS
 * cert_chain files as recorded in the test fixtures (amd_ask_ark_{milan,genoa,turin}.pem,
 * see shared/fixtures/SOURCES.md); the VLEK chains carry the same ARKs. Any holder of those
 * files can recompute them with `openssl x509 -pubkey -noout | openssl pkey -pubin -outform
 * der | sha256sum`.
 */
export const AMD_ARK_SPKI_SHA256: Readonly<Record<SnpProduct, string>> = {
  Milan: '9f056bee44377e29308cb5ffa895bdfb62d18881fa6bed8d6f075b0204089cb9',
  Genoa: '429a69c9422aa258ee4d8db5fcda9c6470ef15f8cd5a9cebd6cbc7d90b863831',
  Turin: '4f125410563a2ab9a50356f9243f6fe0b6f73de98603f53f90339c70e9d7ad08',
};

const PSS_SALT = 48;

/** Extensions this code understands well enough to honour when marked critical. */
const KNOWN_CRITICAL = new Set<string>([EXT_OID.BASIC_CONSTRAINTS, EXT_OID.KEY_USAGE]);

export interface AmdChain {
  kind: SnpSigningKey;
  leaf: Certificate;
  intermediate: Certificate;
  ark: Certificate;
}

function chainError(why: string, cause?: unknown): AttestdError {
  return new AttestdError('SNP_CERT_CHAIN_INVALID', why, cause === undefined ? undefined : { cause });
}

/**
 * A certificate of AMD's key hierarchy: X.509 v3, signed with RSASSA-PSS (the parameters are
 * checked per link), no critical extension but basicConstraints and keyUsage, at most one
 * common name. Every failure is SNP_CERT_CHAIN_INVALID: a certificate that does not even
 * parse cannot chain.
 */
export function parseAmdCertificate(der: Uint8Array): Certificate {
  const cert = parseCertificate(der, 'SNP_CERT_CHAIN_INVALID');
  if (cert.version !== 3) throw chainError('not an X.509 v3 certificate');
  if (cert.signatureAlgorithm !== SIG_OID.RSASSA_PSS) throw chainError('the signature algorithm is not RSASSA-PSS');
  if (cert.scheme.kind === 'unsupported') throw chainError(`RSASSA-PSS parameters: ${cert.scheme.why}`);
  const critical = unknownCritical(cert, KNOWN_CRITICAL);
  if (critical) throw chainError(`unsupported critical extension ${critical}`);
  if (commonNames(cert.subjectName).length > 1) throw chainError('more than one common name');
  return cert;
}

/** The serial number as the certificate encodes it, in hex (AMD's are a single 00). */
export function amdSerialHex(cert: Certificate): string {
  return cert.serial.toString('hex');
}

/** The CN of `cert`, or a chain error naming `role`. */
function cn(cert: Certificate, role: string): string {
  if (cert.commonName === undefined) throw chainError(`the ${role} has no common name`);
  return cert.commonName;
}

export function parseAmdChain(kind: SnpSigningKey, leaf: Uint8Array, intermediate: Uint8Array, ark: Uint8Array): AmdChain {
  return { kind, leaf: parseAmdCertificate(leaf), intermediate: parseAmdCertificate(intermediate), ark: parseAmdCertificate(ark) };
}

/** The ARK is a pinned AMD root, or has the same key as one of `trustedArks` (DER). */
export function checkArkTrusted(chain: AmdChain, trustedArks?: readonly Uint8Array[]): string {
  const fingerprint = spkiSha256(chain.ark);
  const pins = trustedArks
    ? trustedArks.map((der) => spkiSha256(parseAmdCertificate(der)))
    : Object.values(AMD_ARK_SPKI_SHA256);
  if (!pins.includes(fingerprint)) {
    throw chainError(`the ARK key (SPKI SHA-256 ${fingerprint}) is not a trusted AMD root`);
  }
  return fingerprint;
}

function rsaKey(cert: Certificate, role: string): KeyObject {
  const key = cert.publicKey;
  if (!key) throw chainError(`the ${role} public key does not decode`);
  if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'rsa-pss') throw chainError(`the ${role} key is not RSA`);
  return key;
}

function checkSignedBy(child: Certificate, childRole: string, issuer: Certificate, issuerRole: string): void {
  const problem = linkProblem(child, issuer, 0, { keyUsage: true, pathLength: false });
  if (problem === 'issuer-name') throw chainError(`the ${childRole} was not issued by the ${issuerRole} (names differ)`);
  if (problem) throw chainError(`the ${issuerRole} is not a CA that may sign certificates`);
  const s = child.scheme;
  if (s.kind !== 'rsa-pss' || s.hash !== 'sha384' || s.mgfHash !== 'sha384' || s.saltLength !== PSS_SALT) {
    throw chainError(`the ${childRole} is not signed with RSASSA-PSS SHA-384, MGF1-SHA-384, salt 48`);
  }
  rsaKey(issuer, issuerRole);
  if (!signedBy(child, issuer)) throw chainError(`the ${childRole} signature does not verify with the ${issuerRole} key`);
}

/**
 * Signatures and names along the chain, and the AMD naming that ties it together: ARK
 * "ARK-<product>", ASK "SEV-<product>" or ASVK "SEV-VLEK-<product>", leaf "SEV-VCEK" or
 * "SEV-VLEK"; the leaf is not a CA. Returns the product the chain is for.
 */
export function checkChainSignatures(chain: AmdChain): SnpProduct {
  const { kind, leaf, intermediate, ark } = chain;
  const mid = kind === 'VCEK' ? 'ASK' : 'ASVK';
  checkSignedBy(ark, 'ARK', ark, 'ARK');
  checkSignedBy(intermediate, mid, ark, 'ARK');
  checkSignedBy(leaf, kind, intermediate, mid);
  // A VCEK or VLEK only signs reports; one marked as a CA could vouch for keys of its own.
  if (leaf.isCa) throw chainError(`the ${kind} is marked as a CA (basicConstraints cA=true)`);

  const arkName = cn(ark, 'ARK');
  const product = arkName.startsWith('ARK-') ? productOfName(arkName.slice(4)) : undefined;
  if (!product) throw chainError(`the ARK "${arkName}" is not for a known product`);
  const wantMid = kind === 'VCEK' ? `SEV-${product}` : `SEV-VLEK-${product}`;
  if (cn(intermediate, mid) !== wantMid) {
    throw chainError(`the ${mid} is "${cn(intermediate, mid)}", expected "${wantMid}" for a ${kind}`);
  }
  if (cn(leaf, kind) !== `SEV-${kind}`) throw chainError(`the leaf is "${cn(leaf, kind)}", expected "SEV-${kind}"`);
  return product;
}

/** Each certificate is within its validity period at `at`; COLLATERAL_STALE otherwise. */
export function checkChainValidity(chain: AmdChain, at: Date): void {
  const roles: [Certificate, string][] = [[chain.ark, 'ARK'], [chain.intermediate, chain.kind === 'VCEK' ? 'ASK' : 'ASVK'], [chain.leaf, chain.kind]];
  for (const [cert, role] of roles) {
    if (at < cert.notBefore || at > cert.notAfter) {
      throw new AttestdError(
        'COLLATERAL_STALE',
        `the ${role} is valid ${cert.notBefore.toISOString()} .. ${cert.notAfter.toISOString()}, not at ${at.toISOString()}`,
      );
    }
  }
}
