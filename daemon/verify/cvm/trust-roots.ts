/**
 * The roots a confidential-VM report is verified to: AMD ARKs for SEV-SNP, the Intel SGX Root
 * CA for TDX. By default the pinned vendor keys (verify/snp/chain.ts, verify/tdx/pck.ts); an
 * operator may configure others (`--cvm-roots`), e.g. for a test fleet or after a vendor
 * rotates a root. The roots in force are recorded at session start as the SHA-256 of each
 * root's SubjectPublicKeyInfo, so an auditor can tell which roots the host trusted and
 * re-appraise with the same ones, supplied by the auditor, never taken from the log.
 */
import { AMD_ARK_SPKI_SHA256, parseAmdCertificate } from '../snp/chain.js';
import { INTEL_SGX_ROOT_SPKI_SHA256 } from '../tdx/pck.js';
import { parseCertificate, spkiSha256 } from '../x509/certificate.js';
import { isSelfSigned } from '../x509/chain.js';
import { AttestdError } from '../../base/errors.js';

export type CvmVendor = 'amd' | 'intel';
export const CVM_VENDORS: readonly CvmVendor[] = ['amd', 'intel'];

/** Root certificates (DER) per vendor; a vendor left out keeps its pinned roots. */
export interface CvmTrustRoots {
  amd?: readonly Uint8Array[];
  intel?: readonly Uint8Array[];
}

/** One root in force, as the session start records it. */
export interface CvmRootInForce {
  vendor: CvmVendor;
  /** SHA-256 of the root's SubjectPublicKeyInfo, hex. */
  spkiSha256: string;
  /** The certificate (DER) of a configured root; absent for a pinned one. */
  certificate?: Uint8Array;
}

/**
 * Checks one configured root: it parses under its vendor's profile and is self-signed (a
 * root, not an intermediate). Returns the SHA-256 of its SubjectPublicKeyInfo. Throws
 * INVALID_ARGUMENT naming `label`.
 */
export function checkRootCertificate(vendor: CvmVendor, der: Uint8Array, label: string): string {
  try {
    const cert = vendor === 'amd' ? parseAmdCertificate(der) : parseCertificate(der, 'TDX_CERT_CHAIN_INVALID');
    if (!isSelfSigned(cert)) throw new Error('not a self-signed root certificate');
    return spkiSha256(cert);
  } catch (err) {
    throw new AttestdError('INVALID_ARGUMENT', `${label}: not a usable ${vendor === 'amd' ? 'AMD ARK' : 'Intel root'} certificate: ${(err as Error).message}`);
  }
}

/** The roots in force per vendor: the configured certificates, or the pinned keys. */
export function rootsInForce(roots: CvmTrustRoots | undefined): CvmRootInForce[] {
  const out: CvmRootInForce[] = [];
  for (const vendor of CVM_VENDORS) {
    const configured = roots?.[vendor];
    if (configured) {
      for (const der of configured) out.push({ vendor, spkiSha256: checkRootCertificate(vendor, der, `${vendor} root`), certificate: der });
    } else {
      const pinned = vendor === 'amd' ? Object.values(AMD_ARK_SPKI_SHA256) : [INTEL_SGX_ROOT_SPKI_SHA256];
      for (const spkiSha256 of pinned) out.push({ vendor, spkiSha256 });
    }
  }
  return out;
}

/** The SPKI digests of a vendor's roots in force. */
export function rootDigests(roots: CvmTrustRoots | undefined, vendor: CvmVendor): string[] {
  return rootsInForce(roots).filter((r) => r.vendor === vendor).map((r) => r.spkiSha256);
}
