/**
 * Verification of a SEV-SNP attestation report against its VCEK or VLEK and the AMD chain.
 * Pure: no I/O, shared with the offline verifier. What comes back has been checked; the
 * guest-side expectations (measurement, report data, debug, minimum TCB) are for
 * checkSnpPolicy on the result.
 */
import { CheckRunner } from '../check-runner.js';
import { AttestdError } from '../../base/errors.js';
import { amdSerialHex, checkArkTrusted, checkChainSignatures, checkChainValidity, parseAmdChain } from './chain.js';
import { checkAmdRevocation, parseAmdCrls } from './crl.js';
import { checkChipIdMatchesKey, checkProduct, checkTcbMatchesKey } from './key-match.js';
import { parseSnpReport, snpReportHeader } from './report.js';
import { reportSigningKey, verifyReportSignature } from './signature.js';
import { familyOfProduct } from './tcb.js';
import type { AmdKeyExtensions, SnpProduct, SnpReport, SnpSigningKey } from './types.js';
import { parseAmdExtensions } from './vcek-extensions.js';

/** Stable names of the checks, in the order they run. */
export const SNP_CHECKS = [
  'report-format',
  'chain-parse',
  'ark-trusted',
  'chain-signatures',
  'chain-validity',
  'revocation',
  'report-signature',
  'report-fields',
  'signing-key',
  'product',
  'reported-tcb',
  'chip-id',
] as const;
export type SnpCheck = (typeof SNP_CHECKS)[number];

export type SnpChain = { ask: Uint8Array; ark: Uint8Array } | { asvk: Uint8Array; ark: Uint8Array };

export interface SnpVerifyInput {
  /** The 1184-byte ATTESTATION_REPORT. */
  report: Uint8Array;
  /** The VCEK or VLEK certificate, DER. */
  cert: Uint8Array;
  /** DER certificates: ASK for a VCEK, ASVK for a VLEK, and the ARK. */
  chain: SnpChain;
  /** When the certificates must be valid; default now. */
  at?: Date;
  /** Trust these roots (DER) instead of the pinned AMD ARKs. */
  trustedArks?: readonly Uint8Array[];
  /** AMD CRLs (DER), from AMD KDS /vcek/v1/{product}/crl; those of other ARKs are passed over. */
  crls?: readonly Uint8Array[];
  /** Told of each check as it passes or fails, for a caller that shows them all. */
  onCheck?: (check: SnpCheck, passed: boolean, detail: string) => void;
}

export interface VerifiedSnpReport {
  report: SnpReport;
  signingKey: SnpSigningKey;
  product: SnpProduct;
  /** The AMD extensions of the signing certificate. */
  keyExtensions: AmdKeyExtensions;
  certificate: { serial: string; notBefore: Date; notAfter: Date };
  /** SHA-256 of the trusted ARK's SubjectPublicKeyInfo. */
  arkSpkiSha256: string;
}

/**
 * Verifies a SEV-SNP report. The checks, in order; the first that fails throws AttestdError:
 *  1. report-format: 1184 bytes, version 2, 3 or 5, signature algorithm 1 (ECDSA P-384 with
 *     SHA-384); nothing else is read yet (CVM_REPORT_MALFORMED);
 *  2. chain-parse: the leaf, ASK/ASVK and ARK are X.509 v3 certificates signed with
 *     RSASSA-PSS, without unknown critical extensions (SNP_CERT_CHAIN_INVALID);
 *  3. ark-trusted: the ARK's key is a pinned AMD root, or one of `trustedArks`
 *     (SNP_CERT_CHAIN_INVALID);
 *  4. chain-signatures: the ARK is self-signed and a CA, the ARK signs the ASK/ASVK, which is
 *     a CA and signs the leaf; issuer names match; RSASSA-PSS SHA-384 salt 48 throughout;
 *     AMD naming (ARK-P, SEV-P or SEV-VLEK-P, SEV-VCEK or SEV-VLEK) gives one product P, and
 *     a VCEK chains through an ASK, a VLEK through an ASVK; the leaf is not a CA
 *     (SNP_CERT_CHAIN_INVALID);
 *  5. chain-validity: all three certificates are valid at `at` (COLLATERAL_STALE);
 *  5a. revocation: each of `crls` issued under the ARK's name is signed by the ARK
 *     (SNP_CERT_CHAIN_INVALID), current at `at` (COLLATERAL_STALE) and does not list the ASK
 *     or ASVK (CERT_REVOKED); without such a CRL revocation is not checked;
 *  6. report-signature: the leaf key is EC P-384 and the report's r,s verify over bytes
 *     0x000..0x29F with SHA-384 (SNP_SIGNATURE_INVALID); only now are fields believed;
 *  7. report-fields: reserved bytes and bits are zero, guest policy bits are defined for the
 *     report version, the report is signed (CVM_REPORT_MALFORMED);
 *  8. signing-key: SIGNING_KEY in the report names the kind of the leaf (VCEK or VLEK)
 *     (SNP_SIGNATURE_INVALID);
 *  9. product: the leaf's productName is the chain's product, and the report's CPUID family
 *     and model (v3+) are that product's (SNP_CERT_CHAIN_INVALID, SNP_TCB_MISMATCH);
 * 10. reported-tcb: REPORTED_TCB, in the product's layout, equals the leaf's SPL extensions:
 *     bootloader, TEE, SNP, microcode, and FMC on Turin (SNP_TCB_MISMATCH);
 * 11. chip-id: for a VCEK, CHIP_ID equals its hwID (64 bytes, or 8 on Turin); a VLEK has no
 *     hwID and its cspId is returned instead (SNP_TCB_MISMATCH).
 * Not checked here: anything about the guest itself: see checkSnpPolicy.
 */
export function verifySnpReport(input: SnpVerifyInput): VerifiedSnpReport {
  const at = input.at ?? new Date();
  if (Number.isNaN(at.getTime())) throw new AttestdError('INVALID_ARGUMENT', 'verification time is not a valid date');
  const checks = new CheckRunner<SnpCheck>(input.onCheck);

  const header = checks.must('report-format', () => snpReportHeader(input.report), (h) => `version ${h.version}`);
  const kind: SnpSigningKey = 'asvk' in input.chain ? 'VLEK' : 'VCEK';
  const intermediate = 'asvk' in input.chain ? input.chain.asvk : input.chain.ask;
  const chain = checks.must('chain-parse', () => parseAmdChain(kind, input.cert, intermediate, input.chain.ark), (c) => `${kind} serial ${amdSerialHex(c.leaf)}`);
  const arkSpkiSha256 = checks.must('ark-trusted', () => checkArkTrusted(chain, input.trustedArks), (fp) => `ARK SPKI SHA-256 ${fp}`);
  const chainProduct = checks.must('chain-signatures', () => checkChainSignatures(chain), (p) => `${kind} -> ${kind === 'VCEK' ? 'ASK' : 'ASVK'} -> ARK (${p})`);
  checks.must('chain-validity', () => checkChainValidity(chain, at), () => `at ${at.toISOString()}`);
  checks.must('revocation', () => checkAmdRevocation(chain, parseAmdCrls(input.crls ?? []), at), (detail) => detail);
  checks.must('report-signature', () => verifyReportSignature(input.report, reportSigningKey(chain.leaf)), () => 'ECDSA P-384 SHA-384');

  // Version 2 reports do not name their CPU; the verified chain does.
  const report = checks.must('report-fields', () => parseSnpReport(input.report, familyOfProduct(chainProduct)), () => `version ${header.version}`);
  checks.must('signing-key', () => {
    if (report.signingKey !== kind) {
      throw new AttestdError('SNP_SIGNATURE_INVALID', `the report says it was signed by a ${report.signingKey}, the certificate is a ${kind}`);
    }
  }, () => kind);
  const { keyExtensions, product } = checks.must('product', () => {
    const ext = parseAmdExtensions(chain.leaf.extensions);
    return { keyExtensions: ext, product: checkProduct(report, ext, chainProduct) };
  }, (v) => `${v.product} (${v.keyExtensions.productName ?? ''})`);
  checks.must('reported-tcb', () => checkTcbMatchesKey(report, keyExtensions), () => `0x${report.reportedTcb.raw}`);
  checks.must('chip-id', () => {
    if (kind === 'VCEK') checkChipIdMatchesKey(report, keyExtensions);
  }, () => (kind === 'VCEK' ? 'matches hwID' : `VLEK for ${keyExtensions.cspId ?? 'an unnamed provider'}`));

  return {
    report,
    signingKey: kind,
    product,
    keyExtensions,
    certificate: { serial: amdSerialHex(chain.leaf), notBefore: chain.leaf.notBefore, notAfter: chain.leaf.notAfter },
    arkSpkiSha256,
  };
}
