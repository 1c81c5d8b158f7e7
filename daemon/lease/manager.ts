/**
 * Leases: granted under a passing, fresh epoch to a caller that a policy rule matches, and
 * only once the grant is durable in the audit log; renewed only under a passing epoch by
 * the same process; revoked all at once when an epoch fails. The manager never reads
 * hardware: epochs are handed to it by the attestation loop.
 */
import { randomBytes } from 'node:crypto';
import { AttestdError, type ErrorCode } from '../base/errors.js';
import type { PolicyInForce } from '../policy/holder.js';
import type { WorkloadIdentity } from '../base/workload-identity.js';
import { attestd } from '../gen/proto.js';
import { signToken, type SignedToken } from './token.js';
import type { Signer } from '../base/signer.js';
import type { AuditBody } from '../audit/log.js';
import type { LeaseEvent, LeaseView } from './types.js';
import type { EpochState } from '../appraisal/epoch-state.js';
import { identityProto, sameWorkload, selectRule } from './identity.js';
import { TimeBuckets } from './time-buckets.js';
import type { Outcome } from '../metrics/sink.js';
import type { Rule } from '../policy/types.js';
import { resolveRuleGpus } from '../policy/gpu-scope.js';

const Kind = attestd.audit.v1.LeaseDecision.Kind;

export interface LeaseManagerOptions {
  signer: Signer;
  /** The policy in force; each grant and renewal is checked against it as it is then. */
  policy: Pick<PolicyInForce, 'current'>;
  /** Makes a record durable; rejects when it cannot (then nothing is granted). */
  audit: (body: AuditBody) => Promise<number>;
  now?: () => number;
  /** Operator log for details a client must not see. */
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /** Watchers per lease, bounded so one client cannot grow memory without limit. */
  maxWatchersPerLease?: number;
  /** Told of every decision (for metrics): outcome, and the stable code of a refusal or revocation. */
  onDecision?: (outcome: Outcome, reason?: string, count?: number) => void;
}

interface LiveLease {
  id: string;
  rule: string;
  scopes: string[];
  who: WorkloadIdentity;
  ttlMs: number;
  /** GPU UUIDs the lease covers. */
  gpus: string[];
  epoch: number;
  issuedAtMs: number;
  expiresAtMs: number;
  renewal: number;
  token: SignedToken;
  /** false until the grant is durable; revocation still sees it. */
  granted: boolean;
  revoked?: { code: ErrorCode; reason: string };
  expiringSent: boolean;
  watchers: Set<(e: LeaseEvent) => void>;
}

export class LeaseManager {
  private readonly leases = new Map<string, LiveLease>();
  /** When each granted lease expires, and when its holder is to be warned. */
  private readonly expiries = new TimeBuckets();
  private readonly warnings = new TimeBuckets();
  private epochState: EpochState | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: LeaseManagerOptions) {
    this.now = opts.now ?? Date.now;
  }

  get activeCount(): number {
    return this.leases.size;
  }

  get epoch(): EpochState | undefined {
    return this.epochState;
  }

  /**
   * Takes a new epoch. A failing epoch revokes every lease at once; the revocation is
   * recorded afterwards, because fail-closed must not wait on the disk.
   */
  applyEpoch(epoch: EpochState): void {
    this.epochState = epoch;
    if (!epoch.pass) {
      const first = epoch.reasons[0];
      this.revokeAll('NOT_TRUSTED', first ? first.message : 'appraisal failed', epoch.epoch);
    } else if (epoch.badGpus?.length) {
      this.revokeWhere((l) => l.gpus.some((g) => epoch.badGpus!.includes(g)), 'NOT_TRUSTED', `GPU drift: ${epoch.badGpus.join(', ')}`, epoch.epoch);
    }
  }

  /** Fails the current epoch without a new appraisal (TPM gone, policy invalid, stale). */
  failEpoch(code: ErrorCode, reason: string): void {
    if (this.epochState?.pass) this.epochState = { ...this.epochState, pass: false, reasons: [{ code, message: reason }] };
    this.revokeAll(code, reason, this.epochState?.epoch ?? 0);
  }

  private usableEpoch(): EpochState {
    const e = this.epochState;
    if (!e || !e.pass) {
      const stale = e?.reasons[0]?.code === 'ATTESTATION_STALE';
      throw new AttestdError(stale ? 'ATTESTATION_STALE' : 'NOT_TRUSTED', stale ? 'attestation is stale' : 'host is not trusted');
    }
    if (this.now() > e.validUntilMs) throw new AttestdError('ATTESTATION_STALE', 'attestation is stale');
    return e;
  }

  /**
   * `wantGpus`: UUIDs or indices the caller asks for, a subset of what its rule grants; empty
   * for all of them. A lease never covers a GPU that failed the current epoch.
   */
  async acquire(who: WorkloadIdentity, ruleName?: string, wantGpus: string[] = []): Promise<LeaseView> {
    let epoch: EpochState;
    let rule;
    let gpus: string[];
    try {
      epoch = this.usableEpoch();
      const policy = this.opts.policy.current;
      if (!policy) throw new AttestdError('NOT_TRUSTED', 'no valid policy');
      rule = selectRule(policy.policy, who, ruleName);
      if (!rule) throw new AttestdError('NO_MATCHING_RULE', 'no policy rule matches this workload');
      gpus = leaseGpus(rule, epoch, wantGpus);
    } catch (err) {
      await this.recordDenial(Kind.DENY, '', who, err as AttestdError);
      throw err;
    }
    const now = this.now();
    const lease: LiveLease = {
      id: randomBytes(16).toString('hex'),
      rule: rule.name,
      scopes: rule.scopes,
      who,
      ttlMs: rule.ttlMs,
      epoch: epoch.epoch,
      issuedAtMs: now,
      expiresAtMs: Math.min(now + rule.ttlMs, epoch.validUntilMs),
      renewal: 0,
      gpus,
      token: { token: new Uint8Array(), signature: new Uint8Array() },
      granted: false,
      expiringSent: false,
      watchers: new Set(),
    };
    lease.token = this.sign(lease, epoch);
    // Visible to revokeAll while the grant is being made durable.
    this.leases.set(lease.id, lease);
    try {
      await this.opts.audit({ leaseDecision: { ...this.decision(Kind.GRANT, lease), underUpdateWindow: epoch.underUpdateWindow ?? false } });
    } catch (err) {
      this.leases.delete(lease.id);
      this.opts.log?.('error', 'lease grant not recorded', { err: String(err), lease_id: lease.id });
      throw new AttestdError('AUDIT_UNAVAILABLE', 'the decision could not be recorded', { cause: err });
    }
    if (lease.revoked) {
      this.leases.delete(lease.id);
      throw new AttestdError(lease.revoked.code, 'host became untrusted while granting');
    }
    lease.granted = true;
    this.schedule(lease);
    this.opts.onDecision?.('granted');
    return this.view(lease);
  }

  async renew(who: WorkloadIdentity, leaseId: string): Promise<LeaseView> {
    const lease = this.holderLease(who, leaseId);
    let epoch: EpochState;
    try {
      epoch = this.usableEpoch();
      const policy = this.opts.policy.current;
      if (!policy) throw new AttestdError('NOT_TRUSTED', 'no valid policy');
      // The rule must still exist and still match this workload under the policy in force.
      const rule = selectRule(policy.policy, who, lease.rule);
      if (!rule) throw new AttestdError('NO_MATCHING_RULE', 'the lease rule no longer matches');
      lease.ttlMs = rule.ttlMs;
      lease.scopes = rule.scopes;
      const bad = lease.gpus.filter((g) => epoch.badGpus?.includes(g));
      if (bad.length > 0) throw new AttestdError('NOT_TRUSTED', `GPU ${bad[0]} failed appraisal`);
    } catch (err) {
      await this.recordDenial(Kind.RENEW_DENIED, leaseId, who, err as AttestdError);
      throw err;
    }
    const now = this.now();
    const next = { ...lease, epoch: epoch.epoch, issuedAtMs: now, renewal: lease.renewal + 1,
      expiresAtMs: Math.min(now + lease.ttlMs, epoch.validUntilMs) };
    next.token = this.sign(next, epoch);
    try {
      await this.opts.audit({ leaseDecision: { ...this.decision(Kind.RENEW, next), underUpdateWindow: epoch.underUpdateWindow ?? false } });
    } catch (err) {
      this.opts.log?.('error', 'lease renewal not recorded', { err: String(err), lease_id: leaseId });
      throw new AttestdError('AUDIT_UNAVAILABLE', 'the decision could not be recorded', { cause: err });
    }
    if (lease.revoked || !this.leases.has(leaseId)) {
      throw new AttestdError(lease.revoked?.code ?? 'LEASE_NOT_FOUND', 'lease ended while renewing');
    }
    Object.assign(lease, { epoch: next.epoch, issuedAtMs: now, renewal: next.renewal, expiresAtMs: next.expiresAtMs,
      token: next.token, expiringSent: false });
    this.schedule(lease);
    this.opts.onDecision?.('renewed');
    const view = this.view(lease);
    this.emit(lease, { kind: 'RENEWED', leaseId, lease: view });
    return view;
  }

  async release(who: WorkloadIdentity, leaseId: string): Promise<void> {
    const lease = this.holderLease(who, leaseId, true);
    this.forget(lease);
    this.opts.onDecision?.('released');
    this.emit(lease, { kind: 'RELEASED', leaseId });
    lease.watchers.clear();
    await this.opts.audit({ leaseDecision: this.decision(Kind.RELEASE, lease) }).catch((err) => {
      // The lease is gone either way; releasing can only make the host safer.
      this.opts.log?.('error', 'lease release not recorded', { err: String(err), lease_id: leaseId });
    });
  }

  /** Registers a watcher; returns the current view and an unsubscribe function. */
  watch(who: WorkloadIdentity, leaseId: string, listener: (e: LeaseEvent) => void): { lease: LeaseView; cancel: () => void } {
    const lease = this.holderLease(who, leaseId, true);
    if (lease.watchers.size >= (this.opts.maxWatchersPerLease ?? 8)) {
      throw new AttestdError('TOO_MANY_REQUESTS', 'too many watchers on this lease');
    }
    lease.watchers.add(listener);
    return { lease: this.view(lease), cancel: () => lease.watchers.delete(listener) };
  }

  /** Whether a lease is held, granted and neither expired nor revoked. */
  isLive(leaseId: string): boolean {
    const lease = this.leases.get(leaseId);
    return !!lease && lease.granted && !lease.revoked && this.now() < lease.expiresAtMs;
  }

  /**
   * Periodic housekeeping: expires leases past their time, warns holders when a quarter of
   * the lease's current span is left, and revokes everything once the epoch is older than the policy allows.
   */
  sweep(): void {
    const now = this.now();
    const e = this.epochState;
    if (e?.pass && now > e.validUntilMs) {
      this.failEpoch('ATTESTATION_STALE', 'no passing appraisal within max_age');
    }
    for (const id of this.warnings.takeDue(now)) {
      const lease = this.leases.get(id);
      if (!lease || lease.expiringSent || now >= lease.expiresAtMs) continue;
      lease.expiringSent = true;
      this.emit(lease, { kind: 'EXPIRING', leaseId: lease.id, lease: this.view(lease) });
    }
    const expired: LiveLease[] = [];
    for (const id of this.expiries.takeDue(now)) {
      const lease = this.leases.get(id);
      if (lease) expired.push(lease);
    }
    if (expired.length === 0) return;
    this.opts.onDecision?.('expired', '', expired.length);
    for (const lease of expired) {
      this.forget(lease);
      this.emit(lease, { kind: 'EXPIRED', leaseId: lease.id });
      lease.watchers.clear();
    }
    void this.opts.audit({ leaseDecision: { kind: Kind.EXPIRE, epoch: e?.epoch ?? 0, count: expired.length,
      leaseIds: expired.map((l) => l.id) } }).catch((err) =>
      this.opts.log?.('error', 'lease expiry not recorded', { err: String(err) }));
  }

  /** Revokes every lease (also those whose grant is still being recorded) and tells watchers. */
  revokeAll(code: ErrorCode, reason: string, epoch: number): void {
    this.revokeWhere(() => true, code, reason, epoch);
  }

  /** Revokes the leases `which` selects, tells their watchers, and records it (after the fact). */
  private revokeWhere(which: (l: LiveLease) => boolean, code: ErrorCode, reason: string, epoch: number): void {
    const ids: string[] = [];
    for (const lease of [...this.leases.values()]) {
      if (!which(lease)) continue;
      lease.revoked = { code, reason };
      ids.push(lease.id);
      this.emit(lease, { kind: 'REVOKED', leaseId: lease.id, reasonCode: code, reason });
      lease.watchers.clear();
      this.forget(lease);
    }
    if (ids.length === 0) return;
    this.opts.log?.('warn', 'leases revoked', { reason_code: code, reason, count: ids.length });
    this.opts.onDecision?.('revoked', code, ids.length);
    void this.opts.audit({ leaseDecision: { kind: Kind.REVOKE, epoch, reasonCode: code, reason, count: ids.length, leaseIds: ids } })
      .catch((err) => this.opts.log?.('error', 'revocation not recorded', { err: String(err) }));
  }

  /** Files a granted lease's expiry, and its warning a quarter of its term ahead. */
  private schedule(lease: LiveLease): void {
    this.expiries.set(lease.id, lease.expiresAtMs);
    this.warnings.set(lease.id, lease.expiresAtMs - (lease.expiresAtMs - lease.issuedAtMs) / 4);
  }

  private forget(lease: LiveLease): void {
    this.leases.delete(lease.id);
    this.expiries.delete(lease.id);
    this.warnings.delete(lease.id);
  }

  /**
   * The lease if the caller may act on it: renewal needs the very holder process; watching
   * and releasing are open to processes of the holder's uid, which could signal the holder
   * anyway (so a supervisor or an operator shell of that user can follow or end it).
   */
  private holderLease(who: WorkloadIdentity, leaseId: string, sameUserSuffices = false): LiveLease {
    const lease = this.leases.get(leaseId);
    if (!lease || !lease.granted) throw new AttestdError('LEASE_NOT_FOUND', 'no such lease');
    const allowed = sameUserSuffices ? lease.who.uid === who.uid : sameWorkload(lease.who, who);
    if (!allowed) throw new AttestdError('IDENTITY_MISMATCH', 'caller does not hold this lease');
    if (this.now() >= lease.expiresAtMs) throw new AttestdError('LEASE_EXPIRED', 'lease expired');
    return lease;
  }

  private async recordDenial(kind: number, leaseId: string, who: WorkloadIdentity, err: AttestdError): Promise<void> {
    this.opts.onDecision?.(kind === Kind.DENY ? 'denied' : 'renew_denied', err.code);
    try {
      await this.opts.audit({ leaseDecision: { kind, leaseId, epoch: this.epochState?.epoch ?? 0,
        workload: identityProto(who), reasonCode: err.code, reason: err.message } });
    } catch (auditErr) {
      this.opts.log?.('error', 'denial not recorded', { err: String(auditErr) });
      throw new AttestdError('AUDIT_UNAVAILABLE', 'the decision could not be recorded', { cause: auditErr });
    }
  }

  private sign(lease: Pick<LiveLease, 'id' | 'epoch' | 'rule' | 'scopes' | 'gpus' | 'who' | 'issuedAtMs' | 'expiresAtMs' | 'renewal'>, epoch: EpochState): SignedToken {
    return signToken({
      version: 1, leaseId: lease.id, epoch: lease.epoch, sessionPublicKey: this.opts.signer.publicKey(), rule: lease.rule, gpus: lease.gpus,
      policySha256: epoch.policyDigest, scopes: lease.scopes, workload: identityProto(lease.who),
      issuedAtMs: lease.issuedAtMs, expiresAtMs: lease.expiresAtMs, renewal: lease.renewal,
    }, this.opts.signer);
  }

  private decision(kind: number, lease: Pick<LiveLease, 'id' | 'epoch' | 'rule' | 'who' | 'token' | 'expiresAtMs'>): AuditBody['leaseDecision'] {
    return { kind, leaseId: lease.id, epoch: lease.epoch, rule: lease.rule, workload: identityProto(lease.who),
      token: lease.token, expiresAtMs: lease.expiresAtMs };
  }

  private view(lease: LiveLease): LeaseView {
    return { leaseId: lease.id, token: lease.token, expiresAtMs: lease.expiresAtMs, rule: lease.rule, scopes: lease.scopes, gpus: lease.gpus };
  }

  private emit(lease: LiveLease, event: LeaseEvent): void {
    for (const w of lease.watchers) {
      try {
        w(event);
      } catch (err) {
        this.opts.log?.('error', 'watcher failed', { err: String(err) });
      }
    }
  }
}

/** The GPUs a new lease covers: what the rule grants on this host, narrowed to what was asked. */
function leaseGpus(rule: Rule, epoch: EpochState, want: string[]): string[] {
  if (rule.gpus === undefined) {
    if (want.length > 0) throw new AttestdError('NO_MATCHING_RULE', 'the rule grants no GPU');
    return [];
  }
  if (!epoch.gpu) throw new AttestdError('NOT_TRUSTED', 'no GPU measurement in this epoch');
  const scope = resolveRuleGpus(rule, epoch.gpu);
  if ('code' in scope) throw new AttestdError('NO_MATCHING_RULE', scope.message);
  let uuids = scope.uuids;
  if (want.length > 0) {
    const byIndex = new Map(epoch.gpu.gpus.map((g) => [String(g.index), g.uuid]));
    const asked = want.map((w) => byIndex.get(w) ?? w.toLowerCase().replace(/^gpu-/, 'GPU-'));
    const outside = asked.find((u) => !uuids.includes(u));
    if (outside) throw new AttestdError('NO_MATCHING_RULE', `the rule does not grant ${outside}`);
    uuids = [...new Set(asked)];
  }
  const bad = uuids.find((u) => epoch.badGpus?.includes(u));
  if (bad) throw new AttestdError('NOT_TRUSTED', `GPU ${bad} failed appraisal`);
  return uuids;
}
