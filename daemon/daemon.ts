/**
 * The daemon: wires the session key, the audit log, the TPM source, the policy, the lease
 * manager, the attestation loop and the socket server, and owns their start and stop order.
 * Each part is created once, in order, and handed the parts it reads; none reaches back into
 * the daemon. The policy in force lives in one holder, the host's reported state in one
 * status object, the trusted AK in one pin.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { verifyEkCertificate } from './verify/ek-cert.js';
import { hostname } from 'node:os';
import { AuditLog, type AuditBody } from './audit/log.js';
import { Checkpointer } from './audit/checkpointer.js';
import { adoptProcOpener, createSessionKey, setNotDumpable, type SessionKey } from './native.js';
import { AttestdError } from './base/errors.js';
import { AK_KEY_FILE, fileAkStore } from './evidence/tpm/ak-store.js';
import { ResultMaker } from './attestation/result-maker.js';
import { AK_CERT_FILE, certifiesAk } from './verify/ak-certificate.js';
import { parseTpmtPublic } from './verify/tpm-public.js';
import { AuditBudget, type LogUsage } from './audit/budget.js';
import { TpmSource } from './evidence/tpm/source.js';
import { readGpuTrustRoots } from './config/gpu-roots.js';
import { GpuCollector } from './evidence/gpu/collector.js';
import { CvmSource } from './evidence/cvm/source.js';
import { collectHostInventory } from './evidence/gpu/host-inventory.js';
import { MAX_POLICY_BYTES, PolicyError } from './policy/parse.js';
import { PolicyHolder } from './policy/holder.js';
import { loadPolicyFile } from './config/policy-file.js';
import type { LoadedPolicy } from './policy/types.js';
import { LeaseManager } from './lease/manager.js';
import { AUTHZ_IDS_FILE, FileAuthorizationIds } from './lease/authz-replay.js';
import { AkPin } from './attestation/ak-pin.js';
import { rotateAkAtStart, settleAkRotation } from './attestation/ak-rotation.js';
import { AttestationLoop, type LoopDeps } from './attestation/loop.js';
import { ApiServer } from './api/server.js';
import { HostStatus } from './api/host-status.js';
import { readStartTime } from './api/peer.js';
import type { WorkloadIdentity } from './base/workload-identity.js';
import { ed25519PublicKey, verifyLeaseToken } from './verify/lease-token.js';
import { auditBudgetBytes, auditDir, groupId, type DaemonConfig } from './config/daemon-config.js';
import { readCvmRoots } from './config/cvm-roots.js';
import { rootsInForce, type CvmTrustRoots } from './verify/cvm/trust-roots.js';
import type { LogFn } from './logger.js';
import { Notifier } from './systemd/notify.js';
import { listenFdFromSystemd } from './systemd/listen-fds.js';
import { NO_METRICS, type MetricsSink } from './metrics/sink.js';
import type { Metrics } from './metrics/metrics.js';
import { parseMetricsListen } from './metrics/server.js';
import type { Server as HttpServer } from 'node:http';

export const VERSION = '0.1.0';
const SWEEP_MS = 100;
/** Holders are checked every fifth sweep (half a second): a /proc read per holder process. */
const HOLDER_CHECK_EVERY = 5;

/** Everything the daemon starts and stops, each created once by assemble(). */
interface Parts {
  config: DaemonConfig;
  log: LogFn;
  key: SessionKey;
  audit: AuditLog;
  budget: AuditBudget;
  tpm: TpmSource;
  policy: PolicyHolder;
  ak: AkPin;
  leases: LeaseManager;
  status: HostStatus;
  loop: AttestationLoop;
  server: ApiServer;
  checkpoints: Checkpointer;
  notifier: Notifier;
  /** The Prometheus registry, when metrics are exported. */
  exported: Metrics | undefined;
  /** Confidential-VM roots from --cvm-roots; undefined: the pinned vendor keys. */
  cvmRoots: CvmTrustRoots | undefined;
  identity: TpmIdentity;
}

export class Daemon {
  private sweeper: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  private metricsServer: HttpServer | undefined;

  private constructor(private readonly parts: Parts) {}

  /**
   * Starts everything. An invalid policy refuses the start (PolicyError); an unreachable
   * TPM does not: the daemon runs UNTRUSTED and keeps trying.
   */
  static async start(config: DaemonConfig, log: LogFn): Promise<Daemon> {
    guardProcess(log);
    const policy = await loadPolicyFile(config.policyPath);
    const cvmRoots = config.cvmTrustRoots !== undefined ? readCvmRoots(config.cvmTrustRoots) : undefined;
    await mkdir(config.stateDir, { recursive: true, mode: 0o750 });
    const key = createSessionKey();
    let audit: AuditLog | undefined;
    try {
      audit = await AuditLog.open({ dir: auditDir(config), onWriteError: (err) => log('error', 'audit write failed', { err: String(err) }) });
      const d = new Daemon(await assemble(config, log, key, audit, policy, cvmRoots));
      await d.open(policy);
      return d;
    } catch (err) {
      await audit?.close();
      key.close();
      throw err;
    }
  }

  /**
   * Settles an interrupted AK rotation and rotates the AK if asked (attestation/ak-rotation.ts),
   * pins the AK and records the session start and the policy in force, then serves: the
   * socket, the sweep, checkpoints, metrics, the attestation loop and the watchdog.
   */
  private async open(loaded: LoadedPolicy): Promise<void> {
    const { config, log, key, audit, budget, tpm, ak, leases, status, loop, server, checkpoints, notifier, exported, cvmRoots, identity } = this.parts;
    const store = fileAkStore(join(config.stateDir, AK_KEY_FILE));
    await settleAkRotation({ stateDir: config.stateDir, auditDir: audit.dir, store, log });
    if (config.rotateAk) await rotateAkAtStart({ stateDir: config.stateDir, store, tpm, append: (b) => audit.append(b), log });
    budget.start();
    if (!(await ak.pinAtStart())) log('warn', 'TPM not reachable at start; running UNTRUSTED until it answers', { tcti: config.tcti });
    const ek = await ekEvidence(tpm, config.ekCaDir, log);
    identity.ekCertificates = ek.certs;
    const akCertificate = await installedAkCertificate(config.stateDir, ak.publicArea, log);
    identity.akCertificate = akCertificate.length > 0 ? akCertificate : undefined;
    await audit.append({ sessionStart: {
      sessionPublicKey: key.publicKey(), akPublic: ak.publicArea ?? Buffer.alloc(0), akPublicPem: ak.pem(),
      tcti: config.tcti, version: VERSION, pid: process.pid, ekCertificates: ek.certs, ekVerification: ek.verification,
      cvmTrustRoots: rootsInForce(cvmRoots).map((r) => ({ vendor: r.vendor, spkiSha256: Buffer.from(r.spkiSha256, 'hex'), certificate: r.certificate ?? null })),
      akCertificate,
    } });
    await this.recordPolicy(policyInForceRecord(loaded));
    await server.listen();
    let ticks = 0;
    this.sweeper = setInterval(() => {
      leases.sweep();
      if (++ticks % HOLDER_CHECK_EVERY === 0) leases.endExitedHolders();
    }, SWEEP_MS);
    checkpoints.start();
    if (config.metricsListen && exported) {
      const { serveMetrics } = await import('./metrics/server.js');
      this.metricsServer = await serveMetrics(exported, parseMetricsListen(config.metricsListen));
    }
    loop.start();
    notifier.startWatchdog(() => status.loopIsFresh());
    log('info', 'attestd started', { socket: config.socketPath, tcti: config.tcti, policy: config.policyPath, state_dir: config.stateDir });
  }

  /** Records a policy load, valid or not; the log is for the auditor, so a failure here stops nothing. */
  private async recordPolicy(body: AuditBody['policyLoad']): Promise<void> {
    await this.parts.audit.append({ policyLoad: body }).catch((err) => this.parts.log('error', 'policy load not recorded', { err: String(err) }));
  }

  /**
   * SIGHUP: a valid policy replaces the current one and triggers an appraisal under it; an
   * invalid one leaves no policy in force (UNTRUSTED, leases revoked) until a valid one loads.
   */
  async reloadPolicy(): Promise<void> {
    const { config, log, policy, leases, loop } = this.parts;
    try {
      const p = await loadPolicyFile(config.policyPath);
      policy.load(p);
      log('info', 'policy reloaded', { policy: p.file, policy_sha256: p.digest.toString('hex') });
      await this.recordPolicy(policyInForceRecord(p));
      // Leases whose signed authorizations the new policy no longer honours end now, not at
      // renewal; after the policy's record (appended with the load, before any epoch under it).
      await leases.reviewAuthorizations();
      loop.trigger();
    } catch (err) {
      const message = err instanceof PolicyError ? err.message : (err as Error).message;
      policy.reject(message);
      leases.failEpoch('NOT_TRUSTED', 'policy invalid');
      log('error', 'policy reload failed; host UNTRUSTED until a valid policy loads', { policy: config.policyPath, error: message });
      const bytes = await readFile(config.policyPath).catch(() => Buffer.alloc(0));
      const text = bytes.length <= MAX_POLICY_BYTES ? bytes.toString('utf8') : '';
      await this.recordPolicy({ file: config.policyPath, sha256: createHash('sha256').update(bytes).digest(), text: Buffer.from(text),
        valid: false, error: message.slice(0, 4096) });
    }
  }

  /** Stops serving, revokes every lease (holders are told), flushes the log, releases the TPM and the key. */
  stop(): Promise<void> {
    const { log, key, audit, budget, tpm, leases, loop, server, checkpoints, notifier } = this.parts;
    this.stopping ??= (async () => {
      notifier.stopping();
      if (this.sweeper) clearInterval(this.sweeper);
      budget.stop();
      this.metricsServer?.close();
      await loop.stop();
      leases.revokeAll('SHUTTING_DOWN', 'attestd is stopping', leases.epoch?.epoch ?? 0);
      await server.close();
      // The counts of refusals still in memory, before the final checkpoint covers the log.
      leases.flushDenials();
      await checkpoints.stop();
      await audit.close();
      await tpm.close();
      key.close();
      log('info', 'attestd stopped');
    })();
    return this.stopping;
  }
}

/**
 * Creates the parts in dependency order, each handed what it reads: the policy holder and the
 * AK pin first, then the lease manager, the status that reads it, the loop that feeds both,
 * and the server. The metrics registry comes first so the lease manager can count into it;
 * its state gauges are pointed at the status once that exists.
 */
async function assemble(config: DaemonConfig, log: LogFn, key: SessionKey, audit: AuditLog, loaded: LoadedPolicy,
  cvmRoots: CvmTrustRoots | undefined): Promise<Parts> {
  const tpm = new TpmSource(config.tcti, fileAkStore(join(config.stateDir, AK_KEY_FILE)));
  const exported = config.metricsListen ? new (await import('./metrics/metrics.js')).Metrics() : undefined;
  const metrics: MetricsSink = exported ?? NO_METRICS;
  const notifier = new Notifier(process.env, (err) => log('warn', 'sd_notify failed', { err: String(err) }));
  const policy = new PolicyHolder(loaded);
  const ak = new AkPin(tpm, config.stateDir, log);
  const budget = await AuditBudget.open({ dir: audit.dir, budgetBytes: auditBudgetBytes(config), onState: budgetLog(log) });
  audit.onDurable((_, bytes) => budget.added(bytes));
  const authorizationIds = FileAuthorizationIds.open(join(config.stateDir, AUTHZ_IDS_FILE), Date.now());
  const leases = new LeaseManager({ signer: key, policy, audit: (b) => audit.append(b), log, holderAlive, logFull: () => budget.fullNow(), authorizationIds,
    onDecision: (outcome, reason, count) => metrics.decision(outcome, reason, count) });
  const status = new HostStatus({ leases, policy, signer: key, ak, auditLog: budget });
  exported?.readFrom({ state: () => status.stateName(), epoch: () => leases.epoch?.epoch ?? 0,
    activeLeases: () => leases.activeCount, lastPassMs: () => status.lastPassMs, auditLog: () => budget.usage() });
  const loop = new AttestationLoop({
    tpm, audit, leases, signer: key, log, policy, trustedAk: ak,
    gpu: new GpuCollector({ nvmlLibraryPath: config.nvmlLibrary, crossCheck: true }),
    gpuTrust: config.gpuTrustRoots !== undefined ? readGpuTrustRoots(config.gpuTrustRoots) : undefined,
    cvm: new CvmSource({ tsmRoot: config.tsmRoot }),
    cvmRoots,
    inventory: hostInventory(log),
    onEpoch: epochObserver(status, metrics, notifier),
  });
  const sessionKeyObject = ed25519PublicKey(key.publicKey());
  // What the session start finds (the AK certificate, the EK certificates), for results.
  const identity: TpmIdentity = { akCertificate: undefined, ekCertificates: [] };
  const results = new ResultMaker({
    tpm, signer: key, policy: () => policy.current?.policy, epoch: () => leases.epoch, build: `attestd ${VERSION}`,
    akCertificate: () => identity.akCertificate, ekCertificates: () => identity.ekCertificates,
  });
  const server = new ApiServer({
    socketPath: config.socketPath,
    socketGid: config.socketGroup !== undefined ? groupId(config.socketGroup) : undefined,
    listenFd: listenFdFromSystemd(),
    log,
  }, {
    leases,
    status,
    verifyToken: (token, sig) => verifyLeaseToken(token, sig, sessionKeyObject, key.publicKey()),
    enroll: { activateCredential: (kind, name, blob, secret) => tpm.activateCredential(kind, name, blob, secret) },
    results,
  });
  const checkpoints = new Checkpointer({ log: audit, signer: key, origin: logOrigin(),
    onError: (err) => log('error', 'checkpoint not written', { err: String(err) }) });
  return { config, log, key, audit, budget, tpm, policy, ak, leases, status, loop, server, checkpoints, notifier, exported, cvmRoots, identity };
}

/** Each change of the audit log's state against its budget, in the operator log. */
function budgetLog(log: LogFn): (u: LogUsage) => void {
  return (u) => {
    const fields = { used_bytes: u.usedBytes, budget_bytes: u.budgetBytes };
    if (u.state === 'LOG_FULL') log('error', 'audit log at its disk budget: nothing is granted or renewed (AUDIT_BUDGET_EXHAUSTED)', fields);
    else if (u.state === 'LOG_NEARLY_FULL') log('warn', 'audit log nearly at its disk budget (LOG_NEARLY_FULL)', fields);
    else log('info', 'audit log within its disk budget', fields);
  };
}

/** What follows each epoch once it is in force: the status, the metrics, systemd's status line. */
function epochObserver(status: HostStatus, metrics: MetricsSink, notifier: Notifier): NonNullable<LoopDeps['onEpoch']> {
  return (e, info) => {
    status.epochDone(e);
    metrics.appraised(info.seconds, e.pass);
    metrics.source('tpm', info.tpmUp);
    metrics.gpus(e.gpu?.gpus.map((g) => g.uuid) ?? [], e.badGpus ?? []);
    metrics.collateral(info.collateralIssuedAtMs);
    const line = `${status.stateName()} epoch ${e.epoch}${e.pass ? '' : `: ${e.reasons[0]?.code ?? 'failed'}`}`;
    notifier.readyOnce(line);
    notifier.status(line);
  };
}

/** The host inventory JSON, collected in the background: undefined until ready, '' if it could not be. */
function hostInventory(log: LogFn): () => string | undefined {
  let inventory: string | undefined;
  void collectHostInventory().then((i) => (inventory = JSON.stringify(i)), (err) => {
    log('warn', 'host inventory not collected', { err: String(err) });
    inventory = '';
  });
  return () => inventory;
}

/** The record of a valid policy put in force. */
function policyInForceRecord(p: LoadedPolicy): AuditBody['policyLoad'] {
  return { file: p.file, sha256: p.digest, text: Buffer.from(p.text), valid: true,
    references: (p.references ?? []).map((r) => ({ file: r.file, text: r.bytes })) };
}

/**
 * The TPM's EK certificates, each verified against the configured vendor CA folder when there
 * is one, to a self-signed root in it. Recorded at session start for the auditor; an EK that
 * does not chain is logged loudly but does not stop the daemon (the AK is what quotes; binding
 * the AK to the EK by credential activation is outside this check).
 */
async function ekEvidence(tpm: TpmSource, caDir: string | undefined, log: LogFn): Promise<{ certs: Buffer[]; verification: string }> {
  let found: [string, Buffer][] = [];
  try {
    const ek = await tpm.ekCertificates();
    found = ([['rsa', ek.rsa], ['ecc-p256', ek.ecc], ['ecc-p384', ek.eccP384]] as const)
      .filter((e): e is [typeof e[0], Buffer] => e[1] !== undefined).map(([k, c]) => [k, c]);
  } catch (err) {
    log('warn', 'EK certificates not readable', { err: String(err) });
  }
  const certs = found.map(([, c]) => c);
  if (!caDir || certs.length === 0) return { certs, verification: '' };
  let bundle: Buffer[];
  try {
    bundle = await Promise.all((await readdir(caDir)).map((n) => readFile(join(caDir, n))));
  } catch (err) {
    log('error', 'TPM vendor CA folder not readable', { err: String(err) });
    return { certs, verification: `failed: ${(err as Error).message}` };
  }
  const results = found.map(([kind, der]) => {
    try {
      return { kind, ok: true, text: verifyEkCertificate(der, bundle, new Date()).chain.join(' -> ') };
    } catch (err) {
      return { kind, ok: false, text: (err as Error).message };
    }
  });
  const failed = results.filter((r) => !r.ok);
  const line = (rs: typeof results) => rs.map((r) => `${r.kind}: ${r.text}`).join('; ');
  if (failed.length > 0) {
    log('error', 'EK certificate does not chain to a root in the configured TPM vendor CAs', { failed: line(failed) });
    return { certs, verification: `failed: ${line(failed)}` };
  }
  log('info', 'EK certificates verified', { ek_chains: line(results) });
  return { certs, verification: `verified: ${line(results)}` };
}

/**
 * The AK certificate installed in the state folder (`attestctl enroll install`), DER, when
 * there is one and it certifies the pinned AK; one that does not is logged and left out.
 */
async function installedAkCertificate(stateDir: string, akPublic: Buffer | undefined, log: LogFn): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(join(stateDir, AK_CERT_FILE));
  } catch {
    return Buffer.alloc(0);
  }
  try {
    if (!akPublic) throw new AttestdError('AK_CERT_INVALID', 'no attestation key is pinned yet');
    const der = certifiesAk(bytes, parseTpmtPublic(akPublic)).der;
    log('info', 'AK certificate recorded', { ak_certificate: join(stateDir, AK_CERT_FILE) });
    return der;
  } catch (err) {
    log('error', 'the installed AK certificate is not for this attestation key; not recorded', { err: String(err) });
    return Buffer.alloc(0);
  }
}

/** The TPM's certificates as the session start found them. */
interface TpmIdentity {
  akCertificate: Buffer | undefined;
  ekCertificates: Buffer[];
}

/** The log's origin line and checkpoint key name: this host's name, then attestd. */
export function logOrigin(): string {
  const host = hostname().replace(/[^A-Za-z0-9.-]/g, '_') || 'localhost';
  return `${host}/attestd`;
}

/**
 * Before anything else: this process becomes non-dumpable, and takes over the socket of
 * attestd-proc-opener, which the service starts first so that it alone keeps CAP_SYS_PTRACE
 * (deploy/systemd/README.md). Without an opener, a caller whose /proc entries this process may
 * not open (another user's, when it lacks the capability) is refused PEER_UNIDENTIFIED.
 */
function guardProcess(log: LogFn, env: NodeJS.ProcessEnv = process.env): void {
  setNotDumpable();
  const named = env.ATTESTD_PROC_OPENER_FD;
  if (named === undefined) {
    log('warn', 'no /proc opener (not started by attestd-proc-opener): callers are identified only where this process may open their /proc entries');
    return;
  }
  // Programs the daemon runs are not told of it (and the descriptor is close-on-exec).
  delete env.ATTESTD_PROC_OPENER_FD;
  if (!/^\d{1,9}$/.test(named)) throw new AttestdError('INVALID_ARGUMENT', `ATTESTD_PROC_OPENER_FD is not a descriptor number: ${named}`);
  const held = setsHoldingPtrace(readFileSync('/proc/self/status', 'utf8'));
  if (held.length > 0) {
    throw new AttestdError('PRIVILEGE_NOT_DROPPED', `started by attestd-proc-opener but CAP_SYS_PTRACE is still in ${held.join(', ')}`);
  }
  adoptProcOpener(Number(named), (why) => log('error', '/proc opener lost: callers are refused PEER_UNIDENTIFIED until restart', { err: why }));
  log('info', '/proc opener adopted', { fd: Number(named) });
}

/** CAP_SYS_PTRACE is bit 19 of the masks in /proc/PID/status. */
const CAP_SYS_PTRACE = 19n;

/** Which of the permitted, effective and ambient sets a /proc/PID/status text says hold CAP_SYS_PTRACE. */
export function setsHoldingPtrace(status: string): string[] {
  return ['CapPrm', 'CapEff', 'CapAmb'].filter((name) => {
    const m = new RegExp(`^${name}:\\s*([0-9a-f]{1,16})$`, 'm').exec(status);
    // An unreadable line counts as holding it: the check fails closed.
    return m === null || ((BigInt(`0x${m[1]}`) >> CAP_SYS_PTRACE) & 1n) === 1n;
  });
}

/** Whether a lease's holder still runs: the same pid with the same start time (a reused pid has another). */
function holderAlive(who: WorkloadIdentity): boolean {
  try {
    return readStartTime(who.pid) === who.startTime;
  } catch {
    return false;
  }
}
