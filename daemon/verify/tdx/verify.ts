/**
 * Verification of an Intel TDX quote with its collateral, step by step. Each step is
 * recorded as a check (see check-runner.ts); a step whose prerequisites did not pass is
 * skipped. The quote and PCK steps are here, the collateral steps in collateral-checks.ts.
 *
 * Checks, in order:
 *  - quote.parse           header v4/v5, TEE type TDX, ECDSA-P256, TD report body, QE report
 *                          certification data with a PCK chain (CVM_REPORT_MALFORMED)
 *  - pck.chain             PCK -> PCK Platform/Processor CA -> Intel SGX Root CA (pinned key,
 *                          or one of trustedRootSpkis),
 *                          names, CA flags, signatures, validity at `at` (TDX_CERT_CHAIN_INVALID)
 *  - pck.extensions        SGX extension: FMSPC, PCE-ID, TCB components, PCESVN, CPUSVN
 *  - qe.signature          QE report signed by the PCK key (TDX_SIGNATURE_INVALID)
 *  - qe.report_data        QE REPORTDATA = SHA-256(attestation key || QE auth data) || zeros
 *  - quote.signature       quote header and body signed by the attestation key
 *  - tcb_info.signature    signed by an "Intel SGX TCB Signing" certificate that chains to the
 *                          pinned root (TDX_COLLATERAL_INVALID)
 *  - tcb_info.freshness    issued before `at`, nextUpdate and signer validity (COLLATERAL_STALE)
 *  - qe_identity.signature, qe_identity.freshness: as for the TCB info
 *  - crl.root, crl.pck     CRLs from the root and from the PCK issuer: issuer, signature,
 *                          freshness (COLLATERAL_STALE), listed => CERT_REVOKED; the root's
 *                          covers the PCK CA and the TCB signing certificates
 *  - tcb_info.fmspc        FMSPC and PCE-ID equal the PCK certificate's
 *  - tcb_info.tdx_module   MRSIGNERSEAM and SEAMATTRIBUTES match the TDX module identity
 *  - tcb_info.status       a TCB level matches the PCK components, PCESVN and TEE_TCB_SVN
 *                          (else TDX_COLLATERAL_INVALID) and is not Revoked (CERT_REVOKED);
 *                          whether its status is acceptable is policy (policy-checks.ts)
 *  - qe_identity.match     MRSIGNER, ISVPRODID, MISCSELECT, ATTRIBUTES under masks; ISVSVN
 *                          level status
 *  - ccel.replay           when a CC event log is given: replays to RTMR0..3 of the quote
 *                          (CCEL_MALFORMED, CCEL_REPLAY_MISMATCH)
 * Weak choices are opt-in by name: acceptStaleCollateral accepts CRLs, TCB info and QE
 * identity past nextUpdate and an expired TCB signing certificate, and says so in the check.
 */
import { AttestdError } from '../../base/errors.js';
import { CheckRunner, firstProblem, type CheckRecord } from '../check-runner.js';
import { parseTdxQuote, type TdxQuote } from './quote.js';
import { p256FromRaw, verifyP256Raw, verifyQeReportData, verifyQeReportSignature } from './qe.js';
import { pckChain, type IntelCertificate as Certificate } from './intel-certificate.js';
import { firstInvalidAt, pckExtensions, verifyChainToRoot, type PckExtensions } from './pck.js';
import { pickCollateral, type CollateralFile, type TdxCollateral } from './collateral.js';
import { checkCollateralSigners, checkCrls, checkQeIdentity, checkTcbInfo, hex, iso, type TdxRun } from './collateral-checks.js';
import type { TcbMatch } from './tcb-info.js';
import { checkReplayMatches, parseCcel, replayRtmrs, type RtmrReplay } from './ccel.js';
import type { TcbStatus } from './json-fields.js';

export interface TdxVerifyOptions {
  /** The verification time. Required so that a result can be reproduced later. */
  at: Date;
  /** Accept collateral past its nextUpdate and an expired TCB signing certificate. */
  acceptStaleCollateral?: boolean;
  /** The CC event log (CCEL) to replay against the quote's RTMRs. */
  ccel?: Uint8Array;
  /** SPKI SHA-256 (hex) of the Intel roots to trust instead of the pinned Intel SGX Root CA. */
  trustedRootSpkis?: readonly string[];
}

/** One recorded check of a TDX verification. */
export type TdxCheck = CheckRecord;

export interface TdxAppraisal {
  quote?: TdxQuote;
  pck?: PckExtensions;
  tcb?: TcbMatch;
  qeTcbStatus?: TcbStatus;
  replay?: RtmrReplay;
  collateral?: TdxCollateral;
  checks: TdxCheck[];
}

/** Runs every check it can and records each; throws only INVALID_ARGUMENT. */
export function appraiseTdxQuote(quoteBytes: Uint8Array, files: readonly CollateralFile[], options: TdxVerifyOptions): TdxAppraisal {
  const at = options?.at;
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new AttestdError('INVALID_ARGUMENT', 'options.at must be a valid Date');
  const run: TdxRun = { checks: new CheckRunner(), at, stale: options.acceptStaleCollateral === true, rootSpkis: options.trustedRootSpkis };
  const out: TdxAppraisal = { checks: run.checks.checks };

  const { quote, chain, pck } = checkQuote(run, quoteBytes);
  out.quote = quote;
  out.pck = pck;
  const col = pickCollateral(files, pck?.fmspc, at);
  out.collateral = col;
  const signers = checkCollateralSigners(run, col, pck, chain?.[chain.length - 1]);
  checkCrls(run, col, chain, signers);
  out.tcb = checkTcbInfo(run, col, quote, pck);
  out.qeTcbStatus = checkQeIdentity(run, col, quote);
  if (options.ccel !== undefined) out.replay = checkCcel(run, options.ccel, quote);
  return out;
}

/**
 * Like appraiseTdxQuote, but returns only when every check passed and none was skipped;
 * otherwise throws the first failure (a skipped check throws TDX_COLLATERAL_INVALID).
 */
export function verifyTdxQuote(quoteBytes: Uint8Array, files: readonly CollateralFile[], options: TdxVerifyOptions): Required<Pick<TdxAppraisal, 'quote' | 'pck' | 'tcb'>> & TdxAppraisal {
  const a = appraiseTdxQuote(quoteBytes, files, options);
  const problem = firstProblem(a.checks, true, 'TDX_COLLATERAL_INVALID');
  if (problem) throw problem;
  return a as Required<Pick<TdxAppraisal, 'quote' | 'pck' | 'tcb'>> & TdxAppraisal;
}

/**
 * quote.parse, pck.chain, pck.extensions, qe.signature, qe.report_data, quote.signature: the
 * quote, its PCK chain to the pinned root, and the signatures that tie them together.
 */
function checkQuote(run: TdxRun, quoteBytes: Uint8Array): { quote?: TdxQuote; chain?: Certificate[]; pck?: PckExtensions } {
  const { checks, at } = run;
  const quote = checks.attempt('quote.parse', [], () => parseTdxQuote(quoteBytes),
    (q) => `TDX quote v${q.header.version}, body type ${q.body.bodyType}`);
  const chain = checks.attempt('pck.chain', ['quote.parse'], () => verifiedPckChain(quote!.pckChainPem, at, run.rootSpkis),
    (certs) => certs.map((x) => x.subjectCn).join(' -> '));
  const pck = checks.attempt('pck.extensions', ['pck.chain'], () => pckExtensions(chain![0]!),
    (ext) => `FMSPC ${hex(ext.fmspc)}, PCE-ID ${hex(ext.pceId)}, PCESVN ${ext.pceSvn}`);
  checks.attempt('qe.signature', ['pck.chain'], () => verifyQeReportSignature(quote!.qeReport, quote!.qeReportSignature, chain![0]!.publicKey),
    () => 'QE report signed by the PCK key');
  checks.attempt('qe.report_data', ['qe.signature'], () => verifyQeReportData(quote!.qeReport, quote!.attestationKey, quote!.qeAuthData),
    () => 'QE report data commits to the attestation key');
  checks.attempt('quote.signature', ['qe.report_data'], () => verifyQuoteSignature(quote!),
    () => 'header and TD report signed by the attestation key');
  return { quote, chain, pck };
}

/** The PCK chain embedded in the quote, verified to a trusted Intel root and valid at `at`. */
function verifiedPckChain(pem: string, at: Date, rootSpkis: readonly string[] | undefined): Certificate[] {
  const certs = pckChain(pem);
  verifyChainToRoot(certs, 'TDX_CERT_CHAIN_INVALID', rootSpkis);
  const bad = firstInvalidAt(certs, at);
  if (bad) throw new AttestdError('TDX_CERT_CHAIN_INVALID', `"${bad.subjectCn}" is valid ${iso(bad.notBefore)}..${iso(bad.notAfter)}, not at ${iso(at)}`);
  return certs;
}

function verifyQuoteSignature(quote: TdxQuote): void {
  if (!verifyP256Raw(p256FromRaw(quote.attestationKey), quote.signedBytes, quote.signature)) {
    throw new AttestdError('TDX_SIGNATURE_INVALID', 'the quote signature does not verify with the attestation key');
  }
}

/** ccel.replay: the CC event log replays to the quote's RTMR0..3 in SHA-384. */
function checkCcel(run: TdxRun, ccel: Uint8Array, quote: TdxQuote | undefined): RtmrReplay | undefined {
  return run.checks.attempt('ccel.replay', ['quote.signature'], () => {
    const replay = replayRtmrs(parseCcel(ccel));
    if (replay.alg !== 'sha384') throw new AttestdError('CCEL_MALFORMED', `a TDX event log must carry SHA-384 digests, not only ${replay.alg}`);
    checkReplayMatches(replay, quote!.body.rtmrs);
    return replay;
  }, () => 'RTMR0..3 replay from the event log');
}
