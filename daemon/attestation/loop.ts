/**
 * Re-attestation, one epoch at a time, off the lease path: bind the session key, the epoch
 * number and the audit log root into the quote's qualifying data, collect a quote, reach a
 * verdict, sign and record the epoch result, then hand it to the lease manager. A failing
 * epoch revokes leases before it is recorded (fail-closed does not wait for the disk); a
 * passing epoch takes effect only once it is durable.
 */
import { attestd } from '../gen/proto.js';
import { asAttestdError, type ErrorCode } from '../base/errors.js';
import { bindingDigest, EMPTY_GPU_MEASUREMENT_SHA256 } from '../verify/binding.js';
import { EPOCH_RESULT_CONTEXT } from '../verify/epoch-result.js';
import { requiredSelections } from '../policy/appraise.js';
import type { Policy } from '../policy/types.js';
import type { PolicyInForce } from '../policy/holder.js';
import type { TpmSource } from '../evidence/tpm/source.js';
import type { GpuCollector, GpuEvidence } from '../evidence/gpu/collector.js';
import type { AuditLog } from '../audit/log.js';
import type { Signer } from '../base/signer.js';
import type { EpochState } from '../appraisal/epoch-state.js';
import { epochVerdict, type EpochVerdict } from '../appraisal/epoch-verdict.js';
import { decodeEvidence, encodeEvidence, RecordCarry, type CollectedEvidence, type EvidenceFields, type RecordedEvidence } from '../appraisal/epoch-record.js';
import type { Reason } from '../base/reason.js';
import { EvidenceCollector } from './collect.js';
import type { RecordedGpuReport } from '../appraisal/source-verdicts.js';
import type { CollateralFile } from '../verify/tdx/collateral.js';
import { GPU_NONCE_VERSION, gpuNonce } from '../verify/gpu-report/nonce.js';
import type { GpuTrust } from '../appraisal/gpu-reports.js';
import { readRimFolder } from './gpu-rims.js';
import type { CvmTrustRoots } from '../verify/cvm/trust-roots.js';
import type { CvmSource } from '../evidence/cvm/source.js';
import type { AkPin } from './ak-pin.js';

/**
 * Where epochs go once reached: the lease manager, in the daemon. The loop only announces; it
 * never reaches into leases, so attestation sits below the lease layer.
 */
export interface EpochSink {
  /** Takes a new epoch; a failing one revokes every lease at once. */
  applyEpoch(epoch: EpochState): void;
  /** Ends every lease now, with a stable code: the TPM was reset or restarted. */
  revokeAll(code: ErrorCode, reason: string, epoch: number): void;
}

export interface LoopDeps {
  tpm: TpmSource;
  /** Host inventory JSON once it is ready (collected in the background), for the record. */
  inventory?: () => string | undefined;
  /** Confidential-VM reports, when the policy asks for them. */
  cvm?: CvmSource;
  /** The vendor roots CVM reports must chain to; undefined: the pinned vendor keys. */
  cvmRoots?: CvmTrustRoots;
  /** GPU and driver measurement, bound into every quote; absent to bind the empty measurement. */
  gpu?: Pick<GpuCollector, 'collect'>;
  audit: AuditLog;
  leases: EpochSink;
  signer: Signer;
  /** The policy in force, read as each epoch starts and to time the next one. */
  policy: Pick<PolicyInForce, 'current'>;
  /** The AK quotes must come from; `ensure` pins one, where it can, before a quote is appraised. */
  trustedAk: Pick<AkPin, 'publicArea'> & Partial<Pick<AkPin, 'ensure'>>;
  now?: () => number;
  log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /** The roots GPU reports and RIMs are judged by; absent for the pinned NVIDIA roots. */
  gpuTrust?: GpuTrust;
  /** Told of every epoch once it is in force, with how long it took and whether the TPM answered. */
  onEpoch?: (e: EpochState, info: EpochInfo) => void;
}

export interface EpochInfo {
  seconds: number;
  tpmUp: boolean;
  collateralIssuedAtMs?: number;
}

export class AttestationLoop {
  private epochNo = 0;
  /** What this session's records carry from epoch to epoch: clock, IMA replay, large artifacts. */
  private readonly carry = new RecordCarry();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private rerun = false;
  private stopped = false;

  private readonly collector: EvidenceCollector;
  private inventoryRecorded = false;

  constructor(private readonly deps: LoopDeps) {
    this.collector = new EvidenceCollector(deps.cvm);
  }

  start(): void {
    this.trigger();
  }

  /** Runs an epoch now (or right after the one in progress); then the interval restarts. */
  trigger(): void {
    if (this.stopped) return;
    if (this.running) {
      this.rerun = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.running = this.runOnce()
      .catch((err) => this.deps.log('error', 'attestation cycle failed', { err: String(err) }))
      .finally(() => {
        this.running = undefined;
        if (this.stopped) return;
        if (this.rerun) {
          this.rerun = false;
          this.trigger();
          return;
        }
        const interval = this.deps.policy.current?.policy.intervalMs ?? 2000;
        this.timer = setTimeout(() => this.trigger(), interval);
      });
  }

  /** The inventory for the first epoch that can carry it; nothing after. */
  private takeInventory(): string {
    if (this.inventoryRecorded) return '';
    const inv = this.deps.inventory?.();
    if (inv === undefined) return '';
    this.inventoryRecorded = true;
    return inv;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private async runOnce(): Promise<void> {
    const { deps } = this;
    const loaded = deps.policy.current;
    const started = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
    const epoch = ++this.epochNo;
    const sessionPublicKey = deps.signer.publicKey();
    const logSize = deps.audit.size;
    const logRoot = deps.audit.root();
    // The GPU measurement comes first: its digest is part of what the TPM quotes.
    const gpu = await this.measureGpus();
    const gpuMeasurementSha256 = gpu.measured?.sha256 ?? EMPTY_GPU_MEASUREMENT_SHA256;
    const binding = bindingDigest({ sessionPublicKey, epoch, gpuMeasurementSha256, logRoot });
    const appraisedAtMs = (deps.now ?? Date.now)();

    await deps.trustedAk.ensure?.().catch((err) => deps.log('warn', 'attestation key not pinned', { err: String(err) }));
    const c = loaded ? await this.collect(loaded.policy, binding, gpu) : { evidence: { gpu: this.gpuEvidence(gpu, []) }, collateral: [] };
    const { verdict, evidence } = loaded
      ? this.appraise(loaded.policy, binding, appraisedAtMs, c, { epoch, gpuMeasurementSha256 })
      : { verdict: { pass: false, reasons: [{ code: 'POLICY_INVALID', message: 'no valid policy is loaded' }] }, evidence: encodeEvidence(c.evidence, this.carry) };
    const { pass, reasons, chainEnded } = verdict;
    const state: EpochState = {
      epoch, pass, reasons, appraisedAtMs,
      validUntilMs: pass && loaded ? appraisedAtMs + loaded.policy.maxAgeMs : 0,
      policyDigest: loaded?.digest ?? Buffer.alloc(32),
      badGpus: verdict.badGpus ?? [],
      underUpdateWindow: verdict.underUpdateWindow ?? false,
      gpu: gpu.measured?.measurement,
    };
    const result = attestd.audit.v1.EpochResult.encode({
      epoch, pass, reasons, appraisedAtMs, validUntilMs: state.validUntilMs, policySha256: state.policyDigest,
      sessionPublicKey, binding, logSize, logRoot, gpuMeasurementSha256, chainEnded: chainEnded ?? null,
      underUpdateWindow: verdict.underUpdateWindow ?? false, ...evidence, hostInventory: this.takeInventory(),
    }).finish();
    const signature = deps.signer.sign(Buffer.concat([EPOCH_RESULT_CONTEXT, result]));
    if (chainEnded) {
      // The TPM was reset or restarted: whatever held before is over, even if this epoch passes.
      deps.leases.revokeAll(chainEnded.code as ErrorCode, chainEnded.message, epoch);
      deps.log('warn', 'TPM reset or restart: lease chain ended', { epoch, reason_code: chainEnded.code });
    }
    const info = { tpmUp: !!c.evidence.tpm, collateralIssuedAtMs: c.evidence.cvm?.collateralIssuedAtMs };
    await this.publish(state, { result, signature }, () => ({ ...info, seconds: elapsed() }), verdict);
  }

  /** The GPU and driver measurement (absent without a collector), or why it could not be taken. */
  private async measureGpus(): Promise<{ measured?: GpuEvidence; error?: string }> {
    if (!this.deps.gpu) return {};
    try {
      return { measured: await this.deps.gpu.collect() };
    } catch (err) {
      return { error: `${asAttestdError(err).code}: ${asAttestdError(err).message}` };
    }
  }

  private gpuEvidence(gpu: { measured?: GpuEvidence; error?: string }, reports: RecordedGpuReport[]): CollectedEvidence['gpu'] {
    if (!this.deps.gpu) return undefined;
    const m = gpu.measured;
    return { measurement: m?.encoded, collectError: gpu.error, reports, crossCheckMismatches: m?.crossCheck.performed ? m.crossCheck.mismatches : [] };
  }

  /**
   * Each GPU's report over its own nonce (derived from the binding and its UUID), with the
   * chain NVML gives for that same device, and the RIMs the policy names.
   */
  private async gpuReports(policy: Policy, binding: Buffer): Promise<Pick<NonNullable<CollectedEvidence['gpu']>, 'reports' | 'reportNonceVersion' | 'rims'>> {
    const { deps } = this;
    let reports: RecordedGpuReport[] = [];
    try {
      reports = (await deps.gpu!.collect({ attestationNonce: (uuid) => gpuNonce(binding, uuid, GPU_NONCE_VERSION) })).attestation
        .map((a) => ({ uuid: a.uuid, report: a.report, certChain: a.attestationCertChain }));
    } catch (err) {
      deps.log('warn', 'GPU attestation reports not collected', { err: String(err) });
    }
    const rimDir = policy.gpu?.rims?.dir;
    const read = rimDir ? await readRimFolder(rimDir) : { rims: [] };
    if (read.error) deps.log('warn', 'GPU RIMs not read', { err: read.error });
    return { reports, reportNonceVersion: GPU_NONCE_VERSION, rims: read.rims };
  }

  /**
   * Everything the policy asks for, in order: the confidential-VM report over the binding and
   * the GPUs' own reports over a nonce derived from it, then the quote, then what must match
   * the quote (event log, IMA lines). A failure to quote is kept as the reason to record.
   */
  private async collect(policy: Policy, binding: Buffer, gpu: { measured?: GpuEvidence; error?: string }): Promise<Collected> {
    const { deps } = this;
    const cvm = await this.collector.beforeQuote(policy, binding);
    const evidence: CollectedEvidence = { cvm: cvm?.evidence, gpu: this.gpuEvidence(gpu, []) };
    if (policy.gpu?.attestation === 'required' && evidence.gpu && gpu.measured) {
      Object.assign(evidence.gpu, await this.gpuReports(policy, binding));
    }
    let collectionFailure: Reason | undefined;
    try {
      const q = await deps.tpm.quote(binding, await deps.tpm.selections(requiredSelections(policy), policy.allowSha1));
      evidence.tpm = { attest: q.attest, signature: q.signature, banks: q.banks, akPublic: q.ak.publicArea };
      Object.assign(evidence, await this.collector.afterQuote(policy, q.banks, this.carry.ima));
    } catch (err) {
      const e = asAttestdError(err);
      collectionFailure = { code: e.code, message: e.message };
    }
    return { evidence, collectionFailure, collateral: cvm?.collateral ?? [] };
  }

  /**
   * The verdict on exactly what will be recorded: the evidence is encoded as the record will
   * hold it, decoded back with the offline verifier's decoder, and appraised from that.
   */
  private appraise(policy: Policy, binding: Buffer, nowMs: number, c: Collected, at: { epoch: number; gpuMeasurementSha256: Buffer }):
    { verdict: EpochVerdict; evidence: EvidenceFields } {
    const evidence = encodeEvidence(c.evidence, this.carry);
    const V1 = attestd.audit.v1;
    const asRecorded = V1.EpochResult.decode(V1.EpochResult.encode({ ...evidence, epoch: at.epoch, gpuMeasurementSha256: at.gpuMeasurementSha256 }).finish());
    let recorded: RecordedEvidence;
    try {
      recorded = decodeEvidence(asRecorded, this.carry, c.collateral, this.deps.cvmRoots);
    } catch (err) {
      this.deps.log('error', 'epoch evidence does not read back as recorded', { err: String(err) });
      return { verdict: { pass: false, reasons: [{ code: 'INTERNAL', message: 'the evidence could not be recorded consistently' }] }, evidence };
    }
    const verdict = epochVerdict({ policy, binding, nowMs, trustedAkPublic: this.deps.trustedAk.publicArea, previousClock: this.carry.clock,
      collectionFailure: c.collectionFailure, gpuTrust: this.deps.gpuTrust, ...recorded });
    this.carry.advance(verdict);
    if (verdict.imaNext) this.collector.advanceIma(c.evidence.ima?.newLines.length ?? 0);
    return { verdict, evidence };
  }

  /**
   * Puts the epoch in force. A failing epoch revokes first and records after (fail-closed
   * does not wait for the disk); a passing one takes effect only once it is durable.
   */
  private async publish(state: EpochState, record: { result: Uint8Array; signature: Buffer }, info: () => EpochInfo,
    verdict: EpochVerdict): Promise<void> {
    const { deps } = this;
    const { epoch, reasons } = state;
    if (!state.pass) {
      deps.leases.applyEpoch(state);
      deps.onEpoch?.(state, info());
      deps.log('warn', 'appraisal failed', { epoch, reasons });
      await deps.audit.append({ epoch: record }).catch((err) =>
        deps.log('error', 'failed epoch not recorded', { epoch, err: String(err) }));
      return;
    }
    try {
      await deps.audit.append({ epoch: record });
    } catch (err) {
      // No record, no trust: a passing epoch that is not durable counts as failing.
      deps.log('error', 'passing epoch not recorded', { epoch, err: String(err) });
      const failed = { ...state, pass: false, validUntilMs: 0, reasons: [{ code: 'AUDIT_UNAVAILABLE', message: 'the epoch could not be recorded' }] };
      deps.leases.applyEpoch(failed);
      deps.onEpoch?.(failed, info());
      return;
    }
    deps.leases.applyEpoch(state);
    deps.onEpoch?.(state, { ...info(), tpmUp: true });
    if (state.badGpus?.length) deps.log('warn', 'GPUs failed appraisal; their leases are revoked', { epoch, reasons });
    else deps.log('debug', 'appraisal passed', { epoch, under_update_window: verdict.underUpdateWindow ?? false });
  }
}

/** One epoch's collection: the evidence to record, why the quote is missing, the collateral read. */
interface Collected {
  evidence: CollectedEvidence;
  collectionFailure?: Reason;
  collateral: CollateralFile[];
}
