/**
 * Verdicts on the evidence beyond the quote (boot log, IMA, confidential VM, GPUs), each from
 * what the audit record holds. Pure and deterministic: the daemon runs them on what it
 * collected, the offline verifier on what the log recorded, and they must agree.
 */
import { asAttestdError } from '../base/errors.js';
import type { PcrBank } from '../verify/pcr.js';
import type { HashAlg } from '../verify/tpm-alg.js';
import { parseEventLog } from '../verify/eventlog/parse.js';
import { parseImaLines, type ImaEntry } from '../verify/ima/parse.js';
import { replayImaPcr10, IMA_PCR } from '../verify/ima/replay.js';
import { verifyBootAggregate } from '../verify/ima/boot-aggregate.js';
import { decodeGpuMeasurement } from '../verify/gpu/measurement-decode.js';
import { gpuNonceVersion, type GpuNonceVersion } from '../verify/gpu-report/nonce.js';
import { gpuReportReasons, type GpuTrust, type RecordedGpuReport, type RecordedRim } from './gpu-reports.js';
import type { GpuMeasurement } from '../verify/gpu/measurement.js';
import { verifyCvmEvidence, type CvmKind } from '../verify/cvm/verify.js';
import type { CvmTrustRoots } from '../verify/cvm/trust-roots.js';
import type { CollateralFile } from '../verify/tdx/collateral.js';
import { appraiseBoot } from '../policy/appraise-boot.js';
import { appraiseIma } from '../policy/appraise-ima.js';
import { appraiseCvm } from '../policy/appraise-cvm.js';
import { appraiseGpu } from '../policy/appraise-gpu.js';
import type { Reason } from '../base/reason.js';
import type { BootPolicy, CvmPolicy, GpuPolicy, ImaPolicy } from '../policy/types.js';

const reason = (err: unknown): Reason => {
  const e = asAttestdError(err);
  return { code: e.code, message: e.message };
};

export function bootVerdict(boot: BootPolicy, log: Uint8Array | undefined, readError: string | undefined, quoted: PcrBank[]): Reason[] {
  if (!log) return [{ code: 'EVENTLOG_UNAVAILABLE', message: `the event log ${boot.eventLog} could not be read: ${readError ?? 'not collected'}` }];
  try {
    return appraiseBoot(boot, parseEventLog(log, { details: true }), quoted);
  } catch (err) {
    return [reason(err)];
  }
}

/** PCR 10 as replayed so far in this session, per bank, and how many entries that took. */
export interface ImaState {
  entries: number;
  pcr10: Map<HashAlg, Buffer>;
}

export interface ImaVerdict {
  reasons: Reason[];
  /** The state after this epoch's lines, when they replayed to the quote. */
  next?: ImaState;
}

/**
 * This epoch's new IMA lines must extend the session's PCR 10 to exactly the quoted value
 * (the daemon took the longest prefix of the list that does); the first entry of a session's
 * first epoch is boot_aggregate and is checked against PCRs 0-9; every new entry is appraised
 * against the allowlist.
 */
export function imaVerdict(ima: ImaPolicy, state: ImaState | undefined, newLines: Uint8Array, readError: string | undefined, quoted: PcrBank[]): ImaVerdict {
  if (readError) return { reasons: [{ code: 'IMA_UNAVAILABLE', message: `the IMA list ${ima.list} could not be read: ${readError}` }] };
  let entries: ImaEntry[];
  try {
    entries = parseImaLines(newLines, { firstLine: (state?.entries ?? 0) + 1 }).entries;
  } catch (err) {
    return { reasons: [reason(err)] };
  }
  const replay = replayImaPcr10(entries, { banks: [ima.bank], start: state?.pcr10 });
  const got = replay.pcr10.get(ima.bank)!;
  const want = quoted.find((b) => b.alg === ima.bank)?.values.get(IMA_PCR);
  if (!want) return { reasons: [{ code: 'PCR_NOT_QUOTED', message: `PCR ${ima.bank}:${IMA_PCR} was not quoted` }] };
  if (!got.equals(want)) {
    return { reasons: [{ code: 'IMA_REPLAY_MISMATCH', message: `the IMA list replays PCR ${ima.bank}:10 to ${got.toString('hex')}, the quote has ${want.toString('hex')}` }] };
  }
  const reasons: Reason[] = [];
  if ((state?.entries ?? 0) === 0) {
    try {
      verifyBootAggregate(entries[0], quoted);
    } catch (err) {
      reasons.push(reason(err));
    }
  }
  reasons.push(...appraiseIma(ima, entries));
  return { reasons, next: { entries: (state?.entries ?? 0) + entries.length, pcr10: replay.pcr10 } };
}

/**
 * How many whole lines at the start of `tail` extend PCR 10 (from `state`) to the quoted value.
 * The kernel appends an entry before it extends the PCR, so the list read after the quote may
 * run ahead of it; the rest is left for the next epoch. Returns the byte length of the prefix,
 * or undefined when no prefix matches.
 */
export function imaMatchingPrefix(bank: HashAlg, state: ImaState | undefined, tail: Uint8Array, quoted: PcrBank[]): number | undefined {
  const want = quoted.find((b) => b.alg === bank)?.values.get(IMA_PCR);
  if (!want) return undefined;
  const parsed = parseImaLines(tail, { firstLine: (state?.entries ?? 0) + 1 });
  let pcr = state?.pcr10.get(bank);
  const ends: number[] = [];
  let offset = 0;
  const bytes = Buffer.from(tail);
  for (let i = 0; i < parsed.entries.length; i++) {
    offset = bytes.indexOf(0x0a, offset) + 1;
    ends.push(offset);
  }
  pcr ??= Buffer.alloc(want.length);
  if (pcr.equals(want)) return 0;
  for (let i = 0; i < parsed.entries.length; i++) {
    pcr = replayImaPcr10([parsed.entries[i]!], { banks: [bank], start: new Map([[bank, pcr]]) }).pcr10.get(bank)!;
    if (pcr.equals(want)) return ends[i];
  }
  return undefined;
}

export interface RecordedCvm {
  kind?: CvmKind;
  report?: Uint8Array;
  certTable?: Uint8Array;
  collectError?: string;
}

export interface CvmVerdictResult {
  reasons: Reason[];
}

/** `roots`: the vendor roots to verify the report to (the daemon's configured ones, or the auditor's). */
export function cvmVerdict(cvm: CvmPolicy, rec: RecordedCvm | undefined, collateral: readonly CollateralFile[], binding: Uint8Array,
  nowMs: number, collateralIssuedAtMs?: number, roots?: CvmTrustRoots): CvmVerdictResult {
  if (!rec?.report || !rec.kind) {
    const missing = rec?.collectError ? `no report: ${rec.collectError}` : 'this host offers no confidential-VM report';
    return { reasons: appraiseCvm(cvm, undefined, nowMs).map((r) => (r.code === 'CVM_MISSING' ? { ...r, message: missing } : r)) };
  }
  const v = verifyCvmEvidence({ kind: rec.kind, report: rec.report, certTable: rec.certTable, collateral, binding, at: new Date(nowMs), roots });
  if (!v.ok) return { reasons: [v.reason] };
  return { reasons: appraiseCvm(cvm, v.facts, nowMs, collateralIssuedAtMs !== undefined ? { issuedAtMs: collateralIssuedAtMs } : undefined) };
}

export type { RecordedGpuReport } from './gpu-reports.js';

/** What the record holds about the GPUs' own reports, with the roots to judge them by. */
export interface GpuReportEvidence {
  reports: readonly RecordedGpuReport[];
  /** As recorded: 0 for logs made before per-GPU nonces (see verify/gpu-report/nonce.ts). */
  nonceVersion: number;
  rims?: readonly RecordedRim[];
  trust?: GpuTrust;
}

/**
 * The GPU measurement under the policy; with `attestation: required`, also every GPU's own
 * report (gpu-reports.ts). Failures of one GPU name it, so only its leases go.
 */
export function gpuVerdict(gpu: GpuPolicy, measurement: Uint8Array | undefined, collectError: string | undefined,
  att?: GpuReportEvidence, binding?: Uint8Array, nowMs?: number): { reasons: Reason[]; measurement?: GpuMeasurement } {
  if (!measurement) return { reasons: gpu.required ? [{ code: 'GPU_EVIDENCE_MISSING', message: `no GPU measurement: ${collectError ?? 'not collected'}` }] : [] };
  let m: GpuMeasurement;
  try {
    m = decodeGpuMeasurement(measurement);
  } catch (err) {
    return { reasons: [reason(err)] };
  }
  const reasons = appraiseGpu(gpu, m);
  if (gpu.attestation === 'required' && binding) {
    let nonceVersion: GpuNonceVersion;
    try {
      nonceVersion = gpuNonceVersion(att?.nonceVersion ?? 0);
    } catch (err) {
      return { reasons: [...reasons, reason(err)], measurement: m };
    }
    reasons.push(...gpuReportReasons(gpu, m.gpus, { reports: att?.reports ?? [], binding, nowMs: nowMs ?? 0, nonceVersion,
      trust: att?.trust, rims: att?.rims }));
  }
  return { reasons, measurement: m };
}
