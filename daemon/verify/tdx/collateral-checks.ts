/**
 * The collateral steps of TDX quote verification (verify.ts lists every check and its code):
 * who signed the TCB info and QE identity and whether they are fresh, the CRLs, and matching
 * the quote against the TCB info and the QE identity. Each step records its checks in the
 * run's CheckRunner; a step whose prerequisites did not pass is skipped.
 */
import { AttestdError } from '../../base/errors.js';
import type { CheckRunner } from '../check-runner.js';
import type { IntelCertificate as Certificate } from './intel-certificate.js';
import { checkNotRevoked, verifyChainToRoot, type PckExtensions } from './pck.js';
import type { TdxCollateral } from './collateral.js';
import type { TdxQuote } from './quote.js';
import { verifySignedJson, type SignedJson } from './signed-json.js';
import { matchTcbLevel, tdxModuleMatches, type TcbMatch } from './tcb-info.js';
import { matchQeIdentity } from './qe-identity.js';
import type { TcbStatus } from './json-fields.js';

/** What every step shares: the record, the verification time, and whether stale collateral is accepted. */
export interface TdxRun {
  checks: CheckRunner;
  at: Date;
  stale: boolean;
  /** SPKI SHA-256 of the trusted Intel roots; undefined: the pinned one. */
  rootSpkis?: readonly string[];
}

/** For a check whose value is its detail. */
const itself = (detail: string): string => detail;

/**
 * tcb_info.signature and .freshness, then qe_identity.signature and .freshness; returns the
 * "Intel SGX TCB Signing" certificates that signed, which the root CRL must also cover.
 */
export function checkCollateralSigners(run: TdxRun, col: TdxCollateral, pck: PckExtensions | undefined, root: Certificate | undefined): Certificate[] {
  const { checks, at, stale } = run;
  const signers: Certificate[] = [];
  for (const [key, label] of [['tcbInfo', 'tcb_info'], ['qeIdentity', 'qe_identity']] as const) {
    const item = col[key];
    if (!item) {
      checks.skip(`${label}.signature`, `no ${key === 'tcbInfo' ? `TCB info${pck ? ` for FMSPC ${hex(pck.fmspc)}` : ''}` : 'QE identity'} in the collateral`);
      continue;
    }
    const signer = checks.attempt(`${label}.signature`, ['pck.chain'], () => findSigner(item.doc, col, root!, run.rootSpkis), (s) => `${item.name} signed by "${s.subjectCn}"`);
    if (signer && !signers.includes(signer)) signers.push(signer);
    const issued = key === 'tcbInfo' ? col.tcbInfo!.info : col.qeIdentity!.identity;
    checks.attempt(`${label}.freshness`, [`${label}.signature`], () => {
      let detail = freshness(key, issued.issueDate, issued.nextUpdate, at, stale);
      if (at > signer!.notAfter || at < signer!.notBefore) {
        if (!stale) throw new AttestdError('COLLATERAL_STALE', `"${signer!.subjectCn}" is valid ${iso(signer!.notBefore)}..${iso(signer!.notAfter)}, not at ${iso(at)}`);
        detail += `; signer certificate expired ${iso(signer!.notAfter)}, accepted as stale`;
      }
      return detail;
    }, itself);
  }
  return signers;
}

/** crl.root (the PCK CA and the collateral signers) and crl.pck (the PCK certificate). */
export function checkCrls(run: TdxRun, col: TdxCollateral, chain: Certificate[] | undefined, signers: readonly Certificate[]): void {
  const root = chain?.[chain.length - 1];
  checkCrl(run, col, chain, 'crl.root', root, () => [...(chain ?? []).slice(1, -1), ...signers]);
  checkCrl(run, col, chain, 'crl.pck', chain?.[1], () => [chain![0]!]);
}

function checkCrl(run: TdxRun, col: TdxCollateral, chain: Certificate[] | undefined, name: string,
  issuer: Certificate | undefined, subjects: () => Certificate[]): void {
  const entry = issuer ? col.crls.find((x) => x.crl.issuer.equals(issuer.subject)) : undefined;
  if (chain && !entry) return run.checks.skip(name, `no CRL from "${issuer?.subjectCn}" in the collateral`);
  run.checks.attempt(name, ['pck.chain'], () => {
    const { crl } = entry!;
    const detail = freshness('CRL', crl.thisUpdate, crl.nextUpdate, run.at, run.stale);
    for (const s of subjects()) checkNotRevoked(s, issuer!, crl);
    return `${entry!.name}: ${subjects().map((s) => `"${s.subjectCn}"`).join(', ')} not revoked; ${detail}`;
  }, itself);
}

/** tcb_info.fmspc, .tdx_module and .status: the platform's TCB level, or skipped without TCB info. */
export function checkTcbInfo(run: TdxRun, col: TdxCollateral, quote: TdxQuote | undefined, pck: PckExtensions | undefined): TcbMatch | undefined {
  const { checks } = run;
  const info = col.tcbInfo?.info;
  if (!info || !quote) {
    for (const n of ['tcb_info.fmspc', 'tcb_info.tdx_module', 'tcb_info.status']) checks.skip(n, 'not run: no TCB info');
    return undefined;
  }
  checks.attempt('tcb_info.fmspc', ['tcb_info.signature', 'pck.extensions'], () => {
    if (!info.fmspc.equals(pck!.fmspc)) throw new AttestdError('TDX_COLLATERAL_INVALID', `TCB info FMSPC ${hex(info.fmspc)} is not the PCK's ${hex(pck!.fmspc)}`);
    if (!info.pceId.equals(pck!.pceId)) throw new AttestdError('TDX_COLLATERAL_INVALID', `TCB info PCE-ID ${hex(info.pceId)} is not the PCK's ${hex(pck!.pceId)}`);
  }, () => `FMSPC ${hex(info.fmspc)}`);
  checks.attempt('tcb_info.tdx_module', ['tcb_info.fmspc'], () => {
    const why = tdxModuleMatches(info, quote.body.mrSignerSeam, quote.body.seamAttributes, quote.body.teeTcbSvn);
    if (why) throw new AttestdError('TDX_COLLATERAL_INVALID', why);
  }, () => 'TDX module signer and attributes match');
  return checks.attempt('tcb_info.status', ['tcb_info.fmspc', 'tcb_info.tdx_module'], () => {
    const m = matchTcbLevel(info, pck!.sgxTcbComponents, pck!.pceSvn, quote.body.teeTcbSvn);
    if (!m) throw new AttestdError('TDX_COLLATERAL_INVALID', `the platform TCB (TEE_TCB_SVN ${hex(quote.body.teeTcbSvn)}) is below every TCB level`);
    notRevoked('TCB', m.status);
    if (m.moduleStatus) notRevoked('TDX module', m.moduleStatus);
    return m;
  }, (m) => `${m.status} (TCB level of ${m.level.tcbDate}${m.moduleStatus ? `, module ${m.moduleStatus}` : ''})`);
}

/** qe_identity.match: the QE report against the QE identity; its TCB status, or skipped without one. */
export function checkQeIdentity(run: TdxRun, col: TdxCollateral, quote: TdxQuote | undefined): TcbStatus | undefined {
  if (!col.qeIdentity || !quote) {
    run.checks.skip('qe_identity.match', 'not run: no QE identity');
    return undefined;
  }
  const identity = col.qeIdentity.identity;
  return run.checks.attempt('qe_identity.match', ['qe_identity.signature', 'qe.signature'], () => {
    const m = matchQeIdentity(identity, quote.qeReport);
    if ('mismatch' in m) throw new AttestdError('TDX_COLLATERAL_INVALID', m.mismatch);
    if (!m.status) throw new AttestdError('TDX_COLLATERAL_INVALID', `QE ISVSVN ${quote.qeReport.isvSvn} is below every QE identity level`);
    notRevoked('QE', m.status);
    return m.status;
  }, (status) => `TD_QE ISVSVN ${quote.qeReport.isvSvn}: ${status}`);
}

function findSigner(doc: SignedJson, col: TdxCollateral, root: Certificate, rootSpkis: readonly string[] | undefined): Certificate {
  if (col.tcbSigningCerts.length === 0) throw new AttestdError('TDX_COLLATERAL_INVALID', 'no "Intel SGX TCB Signing" certificate in the collateral');
  let last: unknown;
  for (const { cert } of col.tcbSigningCerts) {
    try {
      verifyChainToRoot([cert, root], 'TDX_COLLATERAL_INVALID', rootSpkis);
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

export const iso = (d: Date): string => d.toISOString();
export const hex = (b: Buffer): string => b.toString('hex');
