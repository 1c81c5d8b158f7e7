/**
 * The daemon: wires the session key, the audit log, the TPM source, the policy, the lease
 * manager, the attestation loop and the socket server, and owns their start and stop order.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { verifyEkCertificate } from './verify/ek-cert.js';
import { hostname } from 'node:os';
import { attestd } from './gen/proto.js';
import { AuditLog } from './audit/log.js';
import { Checkpointer } from './audit/checkpointer.js';
import { createSessionKey, type SessionKey } from './native.js';
import { TpmSource } from './evidence/tpm/source.js';
import { GpuCollector } from './evidence/gpu/collector.js';
import { CvmSource } from './evidence/cvm/source.js';
import { collectHostInventory } from './evidence/gpu/host-inventory.js';
import { MAX_POLICY_BYTES, PolicyError } from './policy/parse.js';
import { PolicyHolder } from './policy/holder.js';
import { loadPolicyFile } from './config/policy-file.js';
import type { LoadedPolicy } from './policy/types.js';
import { LeaseManager } from './lease/manager.js';
import { AttestationLoop } from './attestation/loop.js';
import { ApiServer } from './api/server.js';
import { ed25519PublicKey, verifyLeaseToken } from './verify/lease-token.js';
import type { TpmPublicKey } from './verify/tpm-public.js';
import type { EpochState } from './appraisal/epoch-state.js';
import { auditDir, groupId, type DaemonConfig } from './config/daemon-config.js';
import type { LogFn } from './logger.js';
import { Notifier } from './systemd/notify.js';
import { listenFdFromSystemd } from './systemd/listen-fds.js';
import { NO_METRICS, type MetricsSink } from './metrics/sink.js';
import { parseMetricsListen } from './metrics/server.js';
import type { Server as HttpServer } from 'node:http';

const State = attestd.lease.v1.GetStatusResponse.State;
export const VERSION = '0.1.0';
const SWEEP_MS = 100;

export class Daemon {
  private ak: TpmPublicKey | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  private lastPassMs = 0;
  private lastEpochDoneMs = 0;
  private metricsServer: HttpServer | undefined;

  private constructor(
    readonly config: DaemonConfig,
    private readonly log: LogFn,
    private readonly key: SessionKey,
    private readonly audit: AuditLog,
    private readonly checkpoints: Checkpointer,
    private readonly tpm: TpmSource,
    readonly leases: LeaseManager,
    private readonly loop: AttestationLoop,
    private readonly server: ApiServer,
    private readonly notifier: Notifier,
    private readonly metrics: MetricsSink,
    private readonly policy: PolicyHolder,
  ) {}

  /**
   * Starts everything. An invalid policy refuses the start (PolicyError); an unreachable
   * TPM does not: the daemon runs UNTRUSTED and keeps trying.
   */
  static async start(config: DaemonConfig, log: LogFn): Promise<Daemon> {
    const policy = await loadPolicyFile(config.policyPath);
    await mkdir(config.stateDir, { recursive: true, mode: 0o750 });
    const key = createSessionKey();
    let audit: AuditLog | undefined;
    try {
      audit = await AuditLog.open({ dir: auditDir(config), onWriteError: (err) => log('error', 'audit write failed', { err: String(err) }) });
      const tpm = new TpmSource(config.tcti);
      const sessionKeyObject = ed25519PublicKey(key.publicKey());
      const box: { d?: Daemon } = {};
      let metrics: MetricsSink = NO_METRICS;
      let exported: import('./metrics/metrics.js').Metrics | undefined;
      if (config.metricsListen) {
        const { Metrics } = await import('./metrics/metrics.js');
        metrics = exported = new Metrics({
          state: () => box.d?.stateName() ?? 'STARTING', epoch: () => box.d?.leases.epoch?.epoch ?? 0,
          activeLeases: () => box.d?.leases.activeCount ?? 0, lastPassMs: () => box.d?.lastPassMs ?? 0,
        });
      }
      const notifier = new Notifier(process.env, (err) => log('warn', 'sd_notify failed', { err: String(err) }));
      const policies = new PolicyHolder(policy);
      const leases = new LeaseManager({ signer: key, policy: policies, audit: (b) => audit!.append(b), log,
        onDecision: (outcome, reason, count) => metrics.decision(outcome, reason, count) });
      const gpu = new GpuCollector({ nvmlLibraryPath: config.nvmlLibrary, crossCheck: true });
      const cvm = new CvmSource({ tsmRoot: config.tsmRoot });
      let inventory: string | undefined;
      void collectHostInventory().then((i) => (inventory = JSON.stringify(i)), (err) => {
        log('warn', 'host inventory not collected', { err: String(err) });
        inventory = '';
      });
      const loop = new AttestationLoop({
        tpm, gpu, cvm, audit, leases, signer: key, log, inventory: () => inventory,
        policy: policies,
        trustedAkPublic: () => box.d?.ak?.publicArea,
        onEpoch: (e, info) => box.d?.onEpoch(e, info),
      });
      const server = new ApiServer({
        socketPath: config.socketPath,
        socketGid: config.socketGroup !== undefined ? groupId(config.socketGroup) : undefined,
        listenFd: listenFdFromSystemd(),
        log,
      }, {
        leases,
        status: () => box.d!.status(),
        verifyToken: (token, sig) => verifyLeaseToken(token, sig, sessionKeyObject, key.publicKey()),
      });
      const checkpoints = new Checkpointer({ log: audit, signer: key, origin: logOrigin(),
        onError: (err) => log('error', 'checkpoint not written', { err: String(err) }) });
      const d = new Daemon(config, log, key, audit, checkpoints, tpm, leases, loop, server, notifier, metrics, policies);
      box.d = d;
      d.ak = await tpm.attestationKey();
      if (!d.ak) log('warn', 'TPM not reachable at start; running UNTRUSTED until it answers', { tcti: config.tcti });
      const ek = await ekEvidence(tpm, config.ekCaDir, log);
      await audit.append({ sessionStart: {
        sessionPublicKey: key.publicKey(), akPublic: d.ak?.publicArea ?? Buffer.alloc(0), akPublicPem: d.akPem(),
        tcti: config.tcti, version: VERSION, pid: process.pid, ekCertificates: ek.certs, ekVerification: ek.verification,
      } });
      await d.recordPolicy(policy, undefined);
      await server.listen();
      d.sweeper = setInterval(() => leases.sweep(), SWEEP_MS);
      checkpoints.start();
      if (config.metricsListen && exported) {
        const { serveMetrics } = await import('./metrics/server.js');
        d.metricsServer = await serveMetrics(exported, parseMetricsListen(config.metricsListen));
      }
      loop.start();
      notifier.startWatchdog(() => d.loopIsFresh());
      log('info', 'attestd started', { socket: config.socketPath, tcti: config.tcti, policy: config.policyPath, state_dir: config.stateDir });
      return d;
    } catch (err) {
      await audit?.close();
      key.close();
      throw err;
    }
  }

  private akPem(): string {
    return this.ak ? (this.ak.key.export({ type: 'spki', format: 'pem' }) as string) : '';
  }

  private onEpoch(e: EpochState, info: { seconds: number; tpmUp: boolean; collateralIssuedAtMs?: number }): void {
    // A session that started without a TPM pins the first AK that produced a passing quote.
    if (!this.ak && e.pass) void this.tpm.attestationKey().then((ak) => { this.ak ??= ak; });
    this.lastEpochDoneMs = Date.now();
    if (e.pass) this.lastPassMs = e.appraisedAtMs;
    this.metrics.appraised(info.seconds, e.pass);
    this.metrics.source('tpm', info.tpmUp);
    this.metrics.gpus(e.gpu?.gpus.map((g) => g.uuid) ?? [], e.badGpus ?? []);
    this.metrics.collateral(info.collateralIssuedAtMs);
    const line = `${this.stateName()} epoch ${e.epoch}${e.pass ? '' : `: ${e.reasons[0]?.code ?? 'failed'}`}`;
    this.notifier.readyOnce(line);
    this.notifier.status(line);
  }

  /**
   * Whether the attestation loop is alive: it completed an epoch (passing or not) recently.
   * A host that is UNTRUSTED because of drift keeps its watchdog; a stalled loop does not.
   */
  loopIsFresh(): boolean {
    const p = this.policy.current?.policy;
    const limit = Math.max(p?.maxAgeMs ?? 10_000, 3 * (p?.intervalMs ?? 2000));
    return this.lastEpochDoneMs > 0 && Date.now() - this.lastEpochDoneMs <= limit;
  }

  stateName(): 'STARTING' | 'TRUSTED' | 'UNTRUSTED' {
    return (['STARTING', 'STARTING', 'TRUSTED', 'UNTRUSTED'] as const)[this.status().state as number] ?? 'STARTING';
  }

  private async recordPolicy(p: LoadedPolicy | undefined, failure: { file: string; text: string; digest: Buffer; error: string } | undefined): Promise<void> {
    const body = p
      ? { file: p.file, sha256: p.digest, text: Buffer.from(p.text), valid: true }
      : { file: failure!.file, sha256: failure!.digest, text: Buffer.from(failure!.text), valid: false, error: failure!.error };
    await this.audit.append({ policyLoad: body }).catch((err) => this.log('error', 'policy load not recorded', { err: String(err) }));
  }

  /**
   * SIGHUP: a valid policy replaces the current one and triggers an appraisal under it; an
   * invalid one leaves no policy in force (UNTRUSTED, leases revoked) until a valid one loads.
   */
  async reloadPolicy(): Promise<void> {
    try {
      const p = await loadPolicyFile(this.config.policyPath);
      this.policy.load(p);
      this.log('info', 'policy reloaded', { policy: p.file, policy_sha256: p.digest.toString('hex') });
      await this.recordPolicy(p, undefined);
      this.loop.trigger();
    } catch (err) {
      const message = err instanceof PolicyError ? err.message : (err as Error).message;
      this.policy.reject(message);
      this.leases.failEpoch('NOT_TRUSTED', 'policy invalid');
      this.log('error', 'policy reload failed; host UNTRUSTED until a valid policy loads', { policy: this.config.policyPath, error: message });
      const bytes = await readFile(this.config.policyPath).catch(() => Buffer.alloc(0));
      const text = bytes.length <= MAX_POLICY_BYTES ? bytes.toString('utf8') : '';
      await this.recordPolicy(undefined, { file: this.config.policyPath, text, digest: createHash('sha256').update(bytes).digest(), error: message.slice(0, 4096) });
    }
  }

  status(): attestd.lease.v1.GetStatusResponse.$Properties {
    const e = this.leases.epoch;
    const problem = this.policy.problem;
    const reasons: string[] = [];
    let state = State.STARTING;
    if (problem) reasons.push(`POLICY_INVALID: ${problem.split('\n')[0]}`);
    if (e) {
      const fresh = e.pass && Date.now() <= e.validUntilMs;
      state = fresh && !problem ? State.TRUSTED : State.UNTRUSTED;
      if (!e.pass) for (const r of e.reasons) reasons.push(`${r.code}: ${r.message}`);
      else if (!fresh) reasons.push('ATTESTATION_STALE: no passing appraisal within max_age');
    } else if (problem) {
      state = State.UNTRUSTED;
    }
    return {
      state, epoch: e?.epoch ?? 0, reasons, appraisedAtMs: e?.appraisedAtMs ?? 0, validUntilMs: e?.validUntilMs ?? 0,
      sessionPublicKey: this.key.publicKey(), akPublicPem: this.akPem(), policySha256: this.policy.current?.digest ?? Buffer.alloc(0),
      activeLeases: this.leases.activeCount,
    };
  }

  /** Stops serving, revokes every lease (holders are told), flushes the log, releases the TPM and the key. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.notifier.stopping();
      if (this.sweeper) clearInterval(this.sweeper);
      this.metricsServer?.close();
      await this.loop.stop();
      this.leases.revokeAll('SHUTTING_DOWN', 'attestd is stopping', this.leases.epoch?.epoch ?? 0);
      await this.server.close();
      await this.checkpoints.stop();
      await this.audit.close();
      await this.tpm.close();
      this.key.close();
      this.log('info', 'attestd stopped');
    })();
    return this.stopping;
  }
}

/**
 * The TPM's EK certificates, verified against the configured vendor CA bundle when there is
 * one. Recorded at session start for the auditor; an EK that does not chain is logged loudly
 * but does not stop the daemon (the AK is what quotes; binding the AK to the EK by credential
 * activation is outside this check).
 */
async function ekEvidence(tpm: TpmSource, caDir: string | undefined, log: LogFn): Promise<{ certs: Buffer[]; verification: string }> {
  let certs: Buffer[] = [];
  try {
    const ek = await tpm.ekCertificates();
    certs = [ek.rsa, ek.ecc, ek.eccP384].filter((c): c is Buffer => c !== undefined);
  } catch (err) {
    log('warn', 'EK certificates not readable', { err: String(err) });
  }
  if (!caDir || certs.length === 0) return { certs, verification: '' };
  try {
    const bundle = await Promise.all((await readdir(caDir)).map((n) => readFile(join(caDir, n))));
    const v = verifyEkCertificate(certs[0]!, bundle, new Date(), { trustIntermediates: true });
    log('info', 'EK certificate verified', { ek_subject: v.subject, ek_chain: v.chain });
    return { certs, verification: `verified: ${v.chain.join(' -> ')}` };
  } catch (err) {
    log('error', 'EK certificate does not chain to the configured TPM vendor CAs', { err: String(err) });
    return { certs, verification: `failed: ${(err as Error).message}` };
  }
}

/** The log's origin line and checkpoint key name: this host's name, then attestd. */
export function logOrigin(): string {
  const host = hostname().replace(/[^A-Za-z0-9.-]/g, '_') || 'localhost';
  return `${host}/attestd`;
}
