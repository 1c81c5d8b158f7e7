/**
 * Re-attestation, one epoch at a time, off the lease path: bind the session key, the epoch
 * number and the audit log root into the quote's qualifying data, collect a quote, reach a
 * verdict, sign and record the epoch result, then hand it to the lease manager. A failing
 * epoch revokes leases before it is recorded (fail-closed does not wait for the disk); a
 * passing epoch takes effect only once it is durable.
 */
import { attestd } from '../gen/proto.js';
import { asAttestdError, type ErrorCode } from '../base/errors.js';
import type { ClockInfo } from '../verify/tpm-attest.js';
import { bindingDigest, EMPTY_GPU_MEASUREMENT_SHA256 } from '../verify/binding.js';
import { EPOCH_RESULT_CONTEXT } from '../verify/epoch-result.js';
import { requiredSelections } from '../policy/appraise.js';
import type { PolicyInForce } from '../policy/holder.js';
import type { TpmSource } from '../evidence/tpm/source.js';
import type { GpuCollector, GpuEvidence } from '../evidence/gpu/collector.js';
import type { AuditLog } from '../audit/log.js';
import type { Signer } from '../base/signer.js';
import type { EpochState } from '../appraisal/epoch-state.js';
import { epochVerdict, type EpochVerdict, type RecordedTpmEvidence } from '../appraisal/epoch-verdict.js';
import type { Reason } from '../base/reason.js';
import { EvidenceCollector, type CollectedExtra } from './collect.js';
import type { RecordedGpuReport } from '../appraisal/source-verdicts.js';
import { gpuNonce } from '../verify/gpu-report/nonce.js';
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
  /** GPU and driver measurement, bound into every quote; absent to bind the empty measurement. */
  gpu?: Pick<GpuCollector, 'collect'>;
  audit: AuditLog;
  leases: EpochSink;
  signer: Signer;
  /** The policy in force, read as each epoch starts and to time the next one. */
  policy: Pick<PolicyInForce, 'current'>;
  /** The AK quotes must come from, once one is pinned. */
  trustedAk: Pick<AkPin, 'publicArea'>;
  now?: () => number;
  log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /** Told of every epoch once it is in force, with how long it took and whether the TPM answered. */
  onEpoch?: (e: EpochState, info: { seconds: number; tpmUp: boolean; collateralIssuedAtMs?: number }) => void;
}

export class AttestationLoop {
  private epochNo = 0;
  /** Clock of the latest verified quote: a reset or restart since ends the lease chain. */
  private clock: ClockInfo | undefined;
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
    const now = deps.now ?? Date.now;
    const loaded = deps.policy.current;
    const started = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
    const epoch = ++this.epochNo;
    const sessionPublicKey = deps.signer.publicKey();
    const logSize = deps.audit.size;
    const logRoot = deps.audit.root();
    // The GPU measurement comes first: its digest is part of what the TPM quotes.
    let gpu: GpuEvidence | undefined;
    let gpuError: string | undefined;
    if (deps.gpu) {
      try {
        gpu = await deps.gpu.collect();
      } catch (err) {
        gpuError = `${asAttestdError(err).code}: ${asAttestdError(err).message}`;
      }
    }
    const gpuMeasurementSha256 = gpu?.sha256 ?? EMPTY_GPU_MEASUREMENT_SHA256;
    const binding = bindingDigest({ sessionPublicKey, epoch, gpuMeasurementSha256, logRoot });

    let tpm: RecordedTpmEvidence | undefined;
    let collectionFailure: Reason | undefined;
    let verdict: EpochVerdict;
    let extra: CollectedExtra = {};
    let gpuReports: RecordedGpuReport[] = [];
    const appraisedAtMs = now();
    if (!loaded) {
      verdict = { pass: false, reasons: [{ code: 'POLICY_INVALID', message: 'no valid policy is loaded' }] };
    } else {
      extra.cvm = await this.collector.beforeQuote(loaded.policy, binding);
      // The GPUs' own reports, over a nonce derived from this epoch's binding.
      if (loaded.policy.gpu?.attestation === 'required' && deps.gpu && gpu) {
        try {
          gpuReports = (await deps.gpu.collect({ attestationNonce: gpuNonce(binding) })).attestation
            .map((a) => ({ uuid: a.uuid, report: a.report, certChain: a.attestationCertChain }));
        } catch (err) {
          deps.log('warn', 'GPU attestation reports not collected', { err: String(err) });
        }
      }
      try {
        const q = await deps.tpm.quote(binding, await deps.tpm.selections(requiredSelections(loaded.policy), loaded.policy.allowSha1));
        tpm = { attest: q.attest, signature: q.signature, banks: q.banks, akPublic: q.ak.publicArea };
        extra = { ...extra, ...(await this.collector.afterQuote(loaded.policy, q.banks)) };
      } catch (err) {
        const e = asAttestdError(err);
        collectionFailure = { code: e.code, message: e.message };
      }
      verdict = epochVerdict({
        policy: loaded.policy, binding, nowMs: appraisedAtMs, trustedAkPublic: deps.trustedAk.publicArea, tpm, collectionFailure,
        previousClock: this.clock, boot: extra.boot, ima: extra.ima, cvm: extra.cvm,
        gpu: { measurement: gpu?.encoded, collectError: gpuError, reports: gpuReports },
      });
      if (verdict.clock) this.clock = verdict.clock;
      this.collector.commitIma(verdict.imaNext, extra.ima?.newLines.length ?? 0);
    }
    const { pass, reasons, chainEnded } = verdict;
    const state: EpochState = {
      epoch, pass, reasons, appraisedAtMs,
      validUntilMs: pass && loaded ? appraisedAtMs + loaded.policy.maxAgeMs : 0,
      policyDigest: loaded?.digest ?? Buffer.alloc(32),
      badGpus: verdict.badGpus ?? [],
      underUpdateWindow: verdict.underUpdateWindow ?? false,
      gpu: gpu?.measurement,
    };
    const result = attestd.audit.v1.EpochResult.encode({
      epoch, pass, reasons, appraisedAtMs, validUntilMs: state.validUntilMs, policySha256: state.policyDigest,
      sessionPublicKey, binding, logSize, logRoot, gpuMeasurementSha256, chainEnded: chainEnded ?? null,
      underUpdateWindow: verdict.underUpdateWindow ?? false,
      gpu: gpu ? { measurement: gpu.encoded, crossCheckMismatches: gpu.crossCheck.performed ? gpu.crossCheck.mismatches : [], reports: gpuReports }
        : gpuError ? { collectError: gpuError } : null,
      tpm: tpm ? {
        attest: tpm.attest, signature: tpm.signature, akPublic: tpm.akPublic,
        banks: tpm.banks.map((b) => ({ alg: b.alg, values: [...b.values].sort((x, y) => x[0] - y[0]).map(([index, value]) => ({ index, value })) })),
      } : null,
      ...this.collector.record(extra),
      hostInventory: this.takeInventory(),
    }).finish();
    const signature = deps.signer.sign(Buffer.concat([EPOCH_RESULT_CONTEXT, result]));
    if (chainEnded) {
      // The TPM was reset or restarted: whatever held before is over, even if this epoch passes.
      deps.leases.revokeAll(chainEnded.code as ErrorCode, chainEnded.message, epoch);
      deps.log('warn', 'TPM reset or restart: lease chain ended', { epoch, reason_code: chainEnded.code });
    }

    if (!pass) {
      deps.leases.applyEpoch(state);
      deps.onEpoch?.(state, { seconds: elapsed(), tpmUp: !!tpm, collateralIssuedAtMs: extra.cvm?.collateralIssuedAtMs });
      deps.log('warn', 'appraisal failed', { epoch, reasons });
      await deps.audit.append({ epoch: { result, signature } }).catch((err) =>
        deps.log('error', 'failed epoch not recorded', { epoch, err: String(err) }));
      return;
    }
    try {
      await deps.audit.append({ epoch: { result, signature } });
    } catch (err) {
      // No record, no trust: a passing epoch that is not durable counts as failing.
      deps.log('error', 'passing epoch not recorded', { epoch, err: String(err) });
      const failed = { ...state, pass: false, validUntilMs: 0, reasons: [{ code: 'AUDIT_UNAVAILABLE', message: 'the epoch could not be recorded' }] };
      deps.leases.applyEpoch(failed);
      deps.onEpoch?.(failed, { seconds: elapsed(), tpmUp: !!tpm, collateralIssuedAtMs: extra.cvm?.collateralIssuedAtMs });
      return;
    }
    deps.leases.applyEpoch(state);
    deps.onEpoch?.(state, { seconds: elapsed(), tpmUp: true, collateralIssuedAtMs: extra.cvm?.collateralIssuedAtMs });
    if (state.badGpus?.length) deps.log('warn', 'GPUs failed appraisal; their leases are revoked', { epoch, reasons });
    else deps.log('debug', 'appraisal passed', { epoch, under_update_window: verdict.underUpdateWindow ?? false });
  }
}
