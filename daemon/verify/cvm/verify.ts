/**
 * One confidential-VM report, verified for an epoch. Pure: the caller collected the report
 * (configfs-tsm or a guest device) and read the collateral files. Checks, in order:
 *  1. the report verifies with the vendor's keys (SEV-SNP: signature, VCEK or VLEK, as the
 *     report's SIGNING_KEY says, chained through an ASK or ASVK to a trusted AMD root, AMD CRLs
 *     when given, TCB and chip id; TDX: quote and QE signatures, PCK chain to a trusted Intel
 *     root, CRLs, TCB info and QE identity, freshness) — see verify/snp and verify/tdx; the
 *     trusted roots are the pinned vendor keys unless `roots` names others (trust-roots.ts);
 *  2. its report data is the epoch binding followed by 32 zero bytes, so the CPU vendor's key
 *     vouches for this session key, epoch and log root too (CVM_BINDING_MISMATCH).
 * It returns the verified facts for policy, or a failure reason; it never throws for bad
 * evidence.
 */
import { asAttestdError } from '../../base/errors.js';
import { verifySnpReport, type SnpChain } from '../snp/verify.js';
import { snpReportSigningKeyHint } from '../snp/report.js';
import type { SnpReport } from '../snp/types.js';
import { appraiseTdxQuote } from '../tdx/verify.js';
import type { CollateralFile } from '../tdx/collateral.js';
import { parseSnpCertTable, snpCertsFromFiles } from './snp-certs.js';
import { rootDigests, type CvmTrustRoots } from './trust-roots.js';

export type CvmKind = 'snp' | 'tdx';

export interface CvmEvidenceInput {
  kind: CvmKind;
  report: Uint8Array;
  /** SNP certificate table from the host (auxblob / extended report), if any. */
  certTable?: Uint8Array;
  /** Collateral files (any names): AMD or Intel certificates, CRLs, TCB info, QE identity. */
  collateral: readonly CollateralFile[];
  binding: Uint8Array;
  at: Date;
  /** TDX: accept collateral past its next update (named for what it is; off by default). */
  acceptStaleCollateral?: boolean;
  /** Roots to trust instead of the pinned vendor keys, per vendor (`--cvm-roots`). */
  roots?: CvmTrustRoots;
}

export interface CvmFacts {
  kind: CvmKind;
  snp?: SnpReport;
  tdx?: { body: import('../tdx/quote.js').TdReportBody; tcbStatus?: string };
}

export type CvmVerdict = { ok: true; facts: CvmFacts } | { ok: false; reason: { code: string; message: string } };

export function expectedReportData(binding: Uint8Array): Buffer {
  const out = Buffer.alloc(64);
  Buffer.from(binding).copy(out, 0, 0, 32);
  return out;
}

export function verifyCvmEvidence(input: CvmEvidenceInput): CvmVerdict {
  const want = expectedReportData(input.binding);
  try {
    if (input.kind === 'snp') {
      const report = verifySnpCandidates(input);
      if (report.reportData !== want.toString('hex')) {
        return { ok: false, reason: { code: 'CVM_BINDING_MISMATCH', message: 'the SEV-SNP report does not carry this epoch\'s binding' } };
      }
      return { ok: true, facts: { kind: 'snp', snp: report } };
    }
    const a = appraiseTdxQuote(input.report, input.collateral, { at: input.at, acceptStaleCollateral: input.acceptStaleCollateral,
      trustedRootSpkis: input.roots?.intel ? rootDigests(input.roots, 'intel') : undefined });
    const failed = a.checks.find((c) => c.status !== 'pass');
    if (failed || !a.quote) {
      return { ok: false, reason: { code: failed?.code ?? 'TDX_COLLATERAL_INVALID', message: `${failed?.name ?? 'quote'}: ${failed?.detail ?? 'not verified'}` } };
    }
    if (!Buffer.from(a.quote.body.reportData).equals(want)) {
      return { ok: false, reason: { code: 'CVM_BINDING_MISMATCH', message: 'the TDX quote does not carry this epoch\'s binding' } };
    }
    return { ok: true, facts: { kind: 'tdx', tdx: { body: a.quote.body, tcbStatus: a.tcb?.status } } };
  } catch (err) {
    const e = asAttestdError(err);
    return { ok: false, reason: { code: e.code, message: e.message } };
  }
}

/**
 * The SEV-SNP report verified with the first certificates that chain: the signing key from the
 * host's table, else every candidate from the collateral; the intermediate as an ASK or an
 * ASVK as the report's SIGNING_KEY says (the table keeps either under the ASK GUID); every
 * ARK offered. Throws the last failure when none verifies.
 */
function verifySnpCandidates(input: CvmEvidenceInput): SnpReport {
  const fromTable = input.certTable ? parseSnpCertTable(input.certTable) : {};
  const files = snpCertsFromFiles(input.collateral);
  const keys = fromTable.key ? [fromTable.key] : files.keys;
  const mids = fromTable.ask ? [fromTable.ask, ...files.intermediates] : files.intermediates;
  const arks = fromTable.ark ? [fromTable.ark, ...files.arks] : files.arks;
  const vlek = snpReportSigningKeyHint(input.report) === 'VLEK';
  const chainOf = (mid: Uint8Array, ark: Uint8Array): SnpChain => (vlek ? { asvk: mid, ark } : { ask: mid, ark });
  let last: unknown = new Error('no VCEK or VLEK certificate in the certificate table or the collateral');
  for (const cert of keys) {
    for (const mid of mids) {
      for (const ark of arks) {
        try {
          return verifySnpReport({ report: input.report, cert, chain: chainOf(mid, ark), at: input.at, trustedArks: input.roots?.amd, crls: files.crls }).report;
        } catch (err) {
          last = err;
        }
      }
    }
  }
  throw last;
}
