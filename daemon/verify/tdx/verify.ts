/**
 * Verification of an Intel TDX quote with its collateral, step by step. Each step is
 * recorded as a check (see checks.ts); a step whose prerequisites did not pass is skipped.
 *
 * Checks, in order:
 *  - quote.parse           header v4/v5, TEE type TDX, ECDSA-P256, TD report body, QE report
 *                          certification data with a PCK chain (CVM_REPORT_MALFORMED)
 *  - pck.chain             PCK -> PCK Platform/Processor CA -> Intel SGX Root CA (pinned key),
 *                          names, CA flags, signatures, validity at `at` (TDX_CERT_CHAIN_INVALID)
 *  - pck.extensions        SGX extension: FMSPC, PCE-ID, TCB components, PCESVN, CPUSVN
 *  - qe.signature          QE report signed by the PCK key (TDX_SIGNATURE_INVALID)
 *  - qe.report_data        QE REPORTDATA = SHA-256(attestation key || QE auth data) || zeros
 *  - quote.signature       quote header and body signed by the attestation key
 *  - crl.root, crl.pck     CRLs from the root and from the PCK issuer: issuer, signature,
 *                          freshness (COLLATERAL_STALE), listed => CERT_REVOKED
 *  - tcb_info.signature    signed by an "Intel SGX TCB Signing" certificate that chains to the
 *                          pinned root (TDX_COLLATERAL_INVALID)
 *  - tcb_info.freshness    issued before `at`, nextUpdate and signer validity (COLLATERAL_STALE)
 *  - tcb_info.fmspc        FMSPC and PCE-ID equal the PCK certificate's
 *  - tcb_info.tdx_module   MRSIGNERSEAM and SEAMATTRIBUTES match the TDX module identity
 *  - tcb_info.status       a TCB level matches the PCK components, PCESVN and TEE_TCB_SVN
 *                          (else TDX_COLLATERAL_INVALID) and is not Revoked (CERT_REVOKED);
 *                          whether its status is acceptable is policy (policy-checks.ts)
 *  - qe_identity.signature, qe_identity.freshness, qe_identity.match (MRSIGNER, ISVPRODID,
 *                          MISCSELECT, ATTRIBUTES under masks; ISVSVN level status)
 *  - ccel.replay           when a CC event log is given: replays to RTMR0..3 of the quote
 *                          (CCEL_MALFORMED, CCEL_REPLAY_MISMATCH)
 * Weak choices are opt-in by name: acceptStaleCollateral accepts CRLs, TCB info and QE
 * identity past nextUpdate and an expired TCB signing certificate, and says so in the check.
 */
import { AttestdError } from '../../base/errors.js';
import { CheckRunner, firstProblem, type TdxCheck } from './checks.js';
import { parseTdxQuote, type TdxQuote } from './quote.js';
import { p256FromRaw, verifyP256Raw, verifyQeReportData, verifyQeReportSignature } from './qe.js';
import { pckChain, type IntelCertificate as Certificate } from './intel-certificate.js';
import { checkNotRevoked, firstInvalidAt, pckExtensions, verifyChainToRoot, type PckExtensions } from './pck.js';
import { pickCollateral, type CollateralFile, type TdxCollateral } from './collateral.js';
import { verifySignedJson, type SignedJson } from './signed-json.js';
import { matchTcbLevel, tdxModuleMatches, type TcbMatch } from './tcb-info.js';
import { matchQeIdentity } from './qe-identity.js';
import { checkReplayMatches, parseCcel, replayRtmrs, type RtmrReplay } from './ccel.js';
import type { TcbStatus } from './json-fields.js';

export interface TdxVerifyOptions {
  /** The verification time. Required so that a result can be reproduced later. */
  at: Date;
  /** Accept collateral past its nextUpdate and an expired TCB signing certificate. */
  acceptStaleCollateral?: boolean;
  /** The CC event log (CCEL) to replay against the quote's RTMRs. */
  ccel?: Uint8Array;
}

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
  const c = new CheckRunner();
  const out: TdxAppraisal = { checks: c.checks };

  const quote = c.run('quote.parse', [], () => {
    const q = parseTdxQuote(quoteBytes);
    return { value: q, detail: `TDX quote v${q.header.version}, body type ${q.body.bodyType}` };
  });
  out.quote = quote;
  const chain = c.run('pck.chain', ['quote.parse'], () => {
    const certs = pckChain(quote!.pckChainPem);
    verifyChainToRoot(certs, 'TDX_CERT_CHAIN_INVALID');
    const bad = firstInvalidAt(certs, at);
    if (bad) throw new AttestdError('TDX_CERT_CHAIN_INVALID', `"${bad.subjectCn}" is valid ${iso(bad.notBefore)}..${iso(bad.notAfter)}, not at ${iso(at)}`);
    return { value: certs, detail: certs.map((x) => x.subjectCn).join(' -> ') };
  });
  const pck = c.run('pck.extensions', ['pck.chain'], () => {
    const ext = pckExtensions(chain![0]!);
    return { value: ext, detail: `FMSPC ${hex(ext.fmspc)}, PCE-ID ${hex(ext.pceId)}, PCESVN ${ext.pceSvn}` };
  });
  out.pck = pck;
  c.run('qe.signature', ['pck.chain'], () => {
    verifyQeReportSignature(quote!.qeReport, quote!.qeReportSignature, chain![0]!.publicKey);
    return { value: true, detail: 'QE report signed by the PCK key' };
  });
  c.run('qe.report_data', ['qe.signature'], () => {
    verifyQeReportData(quote!.qeReport, quote!.attestationKey, quote!.qeAuthData);
    return { value: true, detail: 'QE report data commits to the attestation key' };
  });
  c.run('quote.signature', ['qe.report_data'], () => {
    if (!verifyP256Raw(p256FromRaw(quote!.attestationKey), quote!.signedBytes, quote!.signature)) {
      throw new AttestdError('TDX_SIGNATURE_INVALID', 'the quote signature does not verify with the attestation key');
    }
    return { value: true, detail: 'header and TD report signed by the attestation key' };
  });

  const col = pickCollateral(files, pck?.fmspc, at);
  out.collateral = col;
  const stale = options.acceptStaleCollateral === true;
  const root = chain?.[chain.length - 1];
  const signers: Certificate[] = [];

  const checkCrl = (name: string, issuer: Certificate | undefined, subjects: () => Certificate[]): void => {
    const entry = issuer ? col.crls.find((x) => x.crl.issuer.equals(issuer.subject)) : undefined;
    if (chain && !entry) return c.skip(name, `no CRL from "${issuer?.subjectCn}" in the collateral`);
    c.run(name, ['pck.chain'], () => {
      const { crl } = entry!;
      const detail = freshness('CRL', crl.thisUpdate, crl.nextUpdate, at, stale);
      for (const s of subjects()) checkNotRevoked(s, issuer!, crl);
      return { value: true, detail: `${entry!.name}: ${subjects().map((s) => `"${s.subjectCn}"`).join(', ')} not revoked; ${detail}` };
    });
  };

  for (const [key, label] of [['tcbInfo', 'tcb_info'], ['qeIdentity', 'qe_identity']] as const) {
    const item = col[key];
    if (!item) {
      c.skip(`${label}.signature`, `no ${key === 'tcbInfo' ? `TCB info${pck ? ` for FMSPC ${hex(pck.fmspc)}` : ''}` : 'QE identity'} in the collateral`);
      continue;
    }
    const signer = c.run(`${label}.signature`, ['pck.chain'], () => {
      const s = findSigner(item.doc, col, root!);
      return { value: s, detail: `${item.name} signed by "${s.subjectCn}"` };
    });
    if (signer && !signers.includes(signer)) signers.push(signer);
    const issued = key === 'tcbInfo' ? col.tcbInfo!.info : col.qeIdentity!.identity;
    c.run(`${label}.freshness`, [`${label}.signature`], () => {
      let detail = freshness(key, issued.issueDate, issued.nextUpdate, at, stale);
      if (at > signer!.notAfter || at < signer!.notBefore) {
        if (!stale) throw new AttestdError('COLLATERAL_STALE', `"${signer!.subjectCn}" is valid ${iso(signer!.notBefore)}..${iso(signer!.notAfter)}, not at ${iso(at)}`);
        detail += `; signer certificate expired ${iso(signer!.notAfter)}, accepted as stale`;
      }
      return { value: true, detail };
    });
  }
  checkCrl('crl.root', root, () => [...(chain ?? []).slice(1, -1), ...signers]);
  checkCrl('crl.pck', chain?.[1], () => [chain![0]!]);

  const info = col.tcbInfo?.info;
  if (info && quote) {
    c.run('tcb_info.fmspc', ['tcb_info.signature', 'pck.extensions'], () => {
      if (!info.fmspc.equals(pck!.fmspc)) throw new AttestdError('TDX_COLLATERAL_INVALID', `TCB info FMSPC ${hex(info.fmspc)} is not the PCK's ${hex(pck!.fmspc)}`);
      if (!info.pceId.equals(pck!.pceId)) throw new AttestdError('TDX_COLLATERAL_INVALID', `TCB info PCE-ID ${hex(info.pceId)} is not the PCK's ${hex(pck!.pceId)}`);
      return { value: true, detail: `FMSPC ${hex(info.fmspc)}` };
    });
    c.run('tcb_info.tdx_module', ['tcb_info.fmspc'], () => {
      const why = tdxModuleMatches(info, quote.body.mrSignerSeam, quote.body.seamAttributes, quote.body.teeTcbSvn);
      if (why) throw new AttestdError('TDX_COLLATERAL_INVALID', why);
      return { value: true, detail: 'TDX module signer and attributes match' };
    });
    out.tcb = c.run('tcb_info.status', ['tcb_info.fmspc', 'tcb_info.tdx_module'], () => {
      const m = matchTcbLevel(info, pck!.sgxTcbComponents, pck!.pceSvn, quote.body.teeTcbSvn);
      if (!m) throw new AttestdError('TDX_COLLATERAL_INVALID', `the platform TCB (TEE_TCB_SVN ${hex(quote.body.teeTcbSvn)}) is below every TCB level`);
      notRevoked('TCB', m.status);
      if (m.moduleStatus) notRevoked('TDX module', m.moduleStatus);
      return { value: m, detail: `${m.status} (TCB level of ${m.level.tcbDate}${m.moduleStatus ? `, module ${m.moduleStatus}` : ''})` };
    });
  } else {
    for (const n of ['tcb_info.fmspc', 'tcb_info.tdx_module', 'tcb_info.status']) c.skip(n, 'not run: no TCB info');
  }
  if (col.qeIdentity && quote) {
    const identity = col.qeIdentity.identity;
    out.qeTcbStatus = c.run('qe_identity.match', ['qe_identity.signature', 'qe.signature'], () => {
      const m = matchQeIdentity(identity, quote.qeReport);
      if ('mismatch' in m) throw new AttestdError('TDX_COLLATERAL_INVALID', m.mismatch);
      if (!m.status) throw new AttestdError('TDX_COLLATERAL_INVALID', `QE ISVSVN ${quote.qeReport.isvSvn} is below every QE identity level`);
      notRevoked('QE', m.status);
      return { value: m.status, detail: `TD_QE ISVSVN ${quote.qeReport.isvSvn}: ${m.status}` };
    });
  } else {
    c.skip('qe_identity.match', 'not run: no QE identity');
  }

  if (options.ccel !== undefined) {
    out.replay = c.run('ccel.replay', ['quote.signature'], () => {
      const replay = replayRtmrs(parseCcel(options.ccel!));
      if (replay.alg !== 'sha384') throw new AttestdError('CCEL_MALFORMED', `a TDX event log must carry SHA-384 digests, not only ${replay.alg}`);
      checkReplayMatches(replay, quote!.body.rtmrs);
      return { value: replay, detail: 'RTMR0..3 replay from the event log' };
    });
  }
  return out;
}

/**
 * Like appraiseTdxQuote, but returns only when every check passed and none was skipped;
 * otherwise throws the first failure (a skipped check throws TDX_COLLATERAL_INVALID).
 */
export function verifyTdxQuote(quoteBytes: Uint8Array, files: readonly CollateralFile[], options: TdxVerifyOptions): Required<Pick<TdxAppraisal, 'quote' | 'pck' | 'tcb'>> & TdxAppraisal {
  const a = appraiseTdxQuote(quoteBytes, files, options);
  const problem = firstProblem(a.checks, true);
  if (problem) throw problem;
  return a as Required<Pick<TdxAppraisal, 'quote' | 'pck' | 'tcb'>> & TdxAppraisal;
}

function findSigner(doc: SignedJson, col: TdxCollateral, root: Certificate): Certificate {
  if (col.tcbSigningCerts.length === 0) throw new AttestdError('TDX_COLLATERAL_INVALID', 'no "Intel SGX TCB Signing" certificate in the collateral');
  let last: unknown;
  for (const { cert } of col.tcbSigningCerts) {
    try {
      verifyChainToRoot([cert, root], 'TDX_COLLATERAL_INVALID');
      verifySignedJson(doc, cert);
      return cert;
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

function freshness(what: string, issued: Date, nextUpdate: Date | undefined, at: Date, stale: boolean): string {
  if (issued > at) throw new AttestdError('TDX_COLLATERAL_INVALID', `${what} was issued ${iso(issued)}, after ${iso(at)}`);
  if (nextUpdate && at > nextUpdate) {
    if (!stale) throw new AttestdError('COLLATERAL_STALE', `${what} expired at its nextUpdate ${iso(nextUpdate)} (verification time ${iso(at)})`);
    return `${what} past its nextUpdate ${iso(nextUpdate)}, accepted as stale`;
  }
  return `${what} issued ${iso(issued)}, next update ${nextUpdate ? iso(nextUpdate) : 'none'}`;
}

/** A revoked TCB level fails verification; every other status is a fact for the policy to judge. */
function notRevoked(what: string, status: TcbStatus): void {
  if (status === 'Revoked') throw new AttestdError('CERT_REVOKED', `${what} TCB status is Revoked`);
}

const iso = (d: Date): string => d.toISOString();
const hex = (b: Buffer): string => b.toString('hex');
