/**
 * The one conversion between an epoch's evidence and its audit record, both ways. The daemon
 * encodes what it collected, decodes the bytes it is about to write and appraises exactly
 * that; the offline verifier decodes the same bytes with the same function and re-runs the
 * same appraisal. So the two can only disagree when the record was changed.
 *
 * Large artifacts (the boot event log, the SEV-SNP certificate table) are recorded in full
 * only when they differ from the last full copy in the session; a record otherwise names them
 * by digest and a reader takes them from its carry. IMA lines continue from the entry count
 * the carry holds.
 */
import { createHash } from 'node:crypto';
import { attestd } from '../gen/proto.js';
import type { Reason } from '../base/reason.js';
import type { PcrBank } from '../verify/pcr.js';
import { isHashAlg } from '../verify/tpm-alg.js';
import type { ClockInfo } from '../verify/tpm-attest.js';
import type { CvmKind } from '../verify/cvm/verify.js';
import type { CollateralFile } from '../verify/tdx/collateral.js';
import type { CvmTrustRoots } from '../verify/cvm/trust-roots.js';
import type { EpochVerdict, EpochVerdictInput, RecordedTpmEvidence } from './epoch-verdict.js';
import type { ImaState, RecordedCvm, RecordedGpuReport } from './source-verdicts.js';
import type { RecordedRim } from './gpu-reports.js';

import V1 = attestd.audit.v1;

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();
const present = (b: Uint8Array | null | undefined): b is Uint8Array => !!b && b.length > 0;

/**
 * What one session's epoch records carry from one to the next. The daemon and the verifier
 * each keep one per session and move it forward the same way: decodeEvidence takes the full
 * artifacts a record holds, advance takes the verdict's clock and IMA position.
 */
export class RecordCarry {
  eventLog: Buffer | undefined;
  eventLogSha256: Buffer | undefined;
  certTable: Buffer | undefined;
  certTableSha256: Buffer | undefined;
  /** PCR 10 replayed so far and the number of IMA entries that took. */
  ima: ImaState | undefined;
  /** The clock of the latest verified quote: a reset or restart since ends the lease chain. */
  clock: ClockInfo | undefined;
  /** Every GPU RIM the session recorded in full, by the hex SHA-256 of its bytes. */
  readonly rims = new Map<string, Buffer>();

  advance(verdict: EpochVerdict): void {
    if (verdict.clock) this.clock = verdict.clock;
    if (verdict.imaNext) this.ima = verdict.imaNext;
  }
}

/** One epoch's evidence as collected, before it is recorded. */
export interface CollectedEvidence {
  tpm?: RecordedTpmEvidence;
  boot?: { log?: Uint8Array; readError?: string };
  /** The IMA lines consumed this epoch; `restarted` when the list began anew (a new boot). */
  ima?: { newLines: Uint8Array; readError?: string; byteOffset: number; restarted: boolean };
  cvm?: RecordedCvm & { via?: string; provider?: string; collateralIssuedAtMs?: number };
  /** Absent when the host has no GPU collector. */
  gpu?: {
    measurement?: Uint8Array; collectError?: string; crossCheckMismatches?: string[]; reports: RecordedGpuReport[];
    /** How the reports' nonces were derived (verify/gpu-report/nonce.ts). */
    reportNonceVersion?: number;
    /** The RIM files read for this epoch. */
    rims?: RecordedRim[];
  };
}

/** The evidence half of an EpochResult; the verdict half is filled in after appraisal. */
export type EvidenceFields = Pick<V1.EpochResult.$Properties, 'tpm' | 'boot' | 'ima' | 'cvm' | 'gpu'>;

/** The evidence of a decoded record, as the epoch verdict takes it. */
export type RecordedEvidence = Pick<EpochVerdictInput, 'tpm' | 'boot' | 'ima' | 'cvm' | 'gpu'>;

/** A record whose evidence cannot be read back as evidence; `check` names what it breaks. */
export class RecordMismatch extends Error {
  constructor(readonly check: 'record' | 'quote' | 'reappraisal', message: string) {
    super(message);
    this.name = 'RecordMismatch';
  }
}

/** Collected evidence to record fields. Reads the carry; does not change it. */
export function encodeEvidence(e: CollectedEvidence, carry: RecordCarry): EvidenceFields {
  const out: EvidenceFields = {};
  if (e.tpm) {
    out.tpm = { attest: e.tpm.attest, signature: e.tpm.signature, akPublic: e.tpm.akPublic,
      banks: e.tpm.banks.map((b) => ({ alg: b.alg, values: [...b.values].sort((x, y) => x[0] - y[0]).map(([index, value]) => ({ index, value })) })) };
  }
  if (e.boot) {
    if (e.boot.log) {
      const digest = sha256(e.boot.log);
      out.boot = { eventLogSha256: digest, eventLog: carry.eventLogSha256?.equals(digest) ? null : e.boot.log };
    } else {
      out.boot = { eventLogSha256: Buffer.alloc(0), readError: e.boot.readError ?? '' };
    }
  }
  if (e.ima) {
    out.ima = { newLines: e.ima.newLines, entriesBefore: e.ima.restarted ? 0 : carry.ima?.entries ?? 0, byteOffset: e.ima.byteOffset,
      readError: e.ima.readError ?? '', restarted: e.ima.restarted };
  }
  if (e.cvm) {
    const digest = e.cvm.certTable ? sha256(e.cvm.certTable) : undefined;
    out.cvm = { kind: e.cvm.kind ?? '', via: e.cvm.via ?? '', provider: e.cvm.provider ?? '', report: e.cvm.report ?? null,
      certTableSha256: digest ?? null, certTable: digest && !carry.certTableSha256?.equals(digest) ? e.cvm.certTable : null,
      collectError: e.cvm.collectError ?? '', collateralIssuedAtMs: e.cvm.collateralIssuedAtMs ?? 0 };
  }
  if (e.gpu?.measurement) {
    out.gpu = { measurement: e.gpu.measurement, crossCheckMismatches: e.gpu.crossCheckMismatches ?? [], reports: e.gpu.reports,
      reportNonceVersion: e.gpu.reportNonceVersion ?? 0, rims: (e.gpu.rims ?? []).map((r) => encodeRim(r, carry)) };
  } else if (e.gpu?.collectError) {
    out.gpu = { collectError: e.gpu.collectError };
  }
  return out;
}

/**
 * A decoded record's evidence, checked for what the record itself must hold together: the
 * bound GPU digest is the recorded measurement's, every PCR bank is a known one, an event log
 * named by digest was recorded earlier in the session, IMA continues where the session left
 * it. Takes the full artifacts the record carries into `carry`. Throws RecordMismatch.
 * `collateral`: the confidential-VM collateral to appraise with (the daemon's files; the
 * auditor's own offline); `roots`: the vendor roots likewise (default the pinned ones).
 */
export function decodeEvidence(r: V1.EpochResult, carry: RecordCarry, collateral: readonly CollateralFile[], roots?: CvmTrustRoots): RecordedEvidence {
  const gpuBytes = present(r.gpu?.measurement) ? Buffer.from(r.gpu.measurement) : Buffer.alloc(0);
  if (!sha256(gpuBytes).equals(Buffer.from(r.gpuMeasurementSha256))) {
    throw new RecordMismatch('reappraisal', `epoch ${r.epoch} binds a GPU measurement digest that is not the recorded measurement's`);
  }
  const tpm = r.tpm ? recordedTpm(r.tpm, r.epoch) : undefined;
  if (present(r.boot?.eventLog)) {
    carry.eventLog = Buffer.from(r.boot.eventLog);
    carry.eventLogSha256 = sha256(carry.eventLog);
  }
  if (present(r.boot?.eventLogSha256) && !carry.eventLogSha256?.equals(Buffer.from(r.boot.eventLogSha256))) {
    throw new RecordMismatch('record', `epoch ${r.epoch} names an event log that no earlier epoch of the session recorded`);
  }
  if (present(r.cvm?.certTable)) {
    carry.certTable = Buffer.from(r.cvm.certTable);
    carry.certTableSha256 = sha256(carry.certTable);
  }
  if (present(r.cvm?.certTableSha256) && !carry.certTableSha256?.equals(Buffer.from(r.cvm.certTableSha256))) {
    throw new RecordMismatch('record', `epoch ${r.epoch} names a certificate table that no earlier epoch of the session recorded`);
  }
  if (r.ima?.restarted) carry.ima = undefined;
  if (r.ima && Number(r.ima.entriesBefore ?? 0) !== (carry.ima?.entries ?? 0)) {
    throw new RecordMismatch('record', `epoch ${r.epoch} continues IMA after entry ${r.ima.entriesBefore}, the log so far replayed ${carry.ima?.entries ?? 0}`);
  }
  return {
    tpm,
    boot: r.boot ? { log: r.boot.readError ? undefined : carry.eventLog, readError: r.boot.readError || undefined } : undefined,
    ima: r.ima ? { state: carry.ima, newLines: Buffer.from(r.ima.newLines ?? []), readError: r.ima.readError || undefined } : undefined,
    cvm: r.cvm ? { rec: recordedCvm(r.cvm, carry), collateral, collateralIssuedAtMs: Number(r.cvm.collateralIssuedAtMs ?? 0) || undefined, roots } : undefined,
    gpu: { measurement: gpuBytes.length ? gpuBytes : undefined, collectError: r.gpu?.collectError || undefined,
      reports: (r.gpu?.reports ?? []).map((g) => ({ uuid: g.uuid ?? '', report: Buffer.from(g.report ?? []), certChain: Buffer.from(g.certChain ?? []) })),
      reportNonceVersion: r.gpu?.reportNonceVersion ?? 0, rims: (r.gpu?.rims ?? []).map((g) => decodeRim(g, carry, r.epoch)) },
  };
}

/** A RIM in full the first time the session records it, by digest after. */
function encodeRim(r: RecordedRim, carry: RecordCarry): V1.IGpuRim {
  const digest = sha256(r.xml);
  return { name: r.name, sha256: digest, xml: carry.rims.has(digest.toString('hex')) ? null : r.xml };
}

function decodeRim(g: V1.IGpuRim, carry: RecordCarry, epoch: number): RecordedRim {
  const digest = Buffer.from(g.sha256 ?? []);
  if (present(g.xml)) {
    const xml = Buffer.from(g.xml);
    if (!sha256(xml).equals(digest)) throw new RecordMismatch('record', `epoch ${epoch} records a RIM whose bytes are not its digest`);
    carry.rims.set(digest.toString('hex'), xml);
  }
  const xml = carry.rims.get(digest.toString('hex'));
  if (!xml) throw new RecordMismatch('record', `epoch ${epoch} names a RIM that no earlier epoch of the session recorded`);
  return { name: g.name ?? '', xml };
}

/** The epoch's first recorded reason, which is why the evidence is missing when the quote is. */
export function recordedCollectionFailure(r: V1.EpochResult): Reason | undefined {
  if (r.tpm || !r.reasons[0]) return undefined;
  return { code: r.reasons[0].code ?? '', message: r.reasons[0].message ?? '' };
}

function recordedTpm(t: V1.ITpmEvidence, epoch: number): RecordedTpmEvidence {
  const banks: PcrBank[] = [];
  for (const b of t.banks ?? []) {
    if (!isHashAlg(b.alg ?? '')) throw new RecordMismatch('quote', `epoch ${epoch} records an unknown PCR bank`);
    banks.push({ alg: b.alg as PcrBank['alg'], values: new Map((b.values ?? []).map((v) => [v.index ?? 0, Buffer.from(v.value ?? [])])) });
  }
  return { attest: Buffer.from(t.attest ?? []), signature: Buffer.from(t.signature ?? []), banks, akPublic: Buffer.from(t.akPublic ?? []) };
}

function recordedCvm(c: V1.ICvmEvidence, carry: RecordCarry): RecordedCvm {
  return {
    kind: (c.kind || undefined) as CvmKind | undefined,
    report: present(c.report) ? Buffer.from(c.report) : undefined,
    certTable: present(c.certTableSha256) ? carry.certTable : undefined,
    collectError: c.collectError || undefined,
  };
}
