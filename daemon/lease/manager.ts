/**
 * Leases: granted under a passing, fresh epoch to a caller that a policy rule matches, and
 * only once the grant is durable in the audit log; renewed only under a passing epoch by
 * the same process; revoked all at once when an epoch fails. The manager never reads
 * hardware: epochs are handed to it by the attestation loop, and the policy in force is
 * read from its holder at each decision.
 *
 * The parts: checks.ts (what a grant and a renewal must pass), decisions.ts (recording,
 * metrics, operator log), records.ts (tokens and audit records), table.ts (live leases and
 * their time indexes), watchers.ts, sweep.ts and revocation.ts.
 */
import { AttestdError, type ErrorCode } from '../base/errors.js';
import type { PolicyInForce } from '../policy/holder.js';
import type { WorkloadIdentity } from '../base/workload-identity.js';
import type { Signer } from '../base/signer.js';
import type { LeaseEvent, LeaseView } from './types.js';
import type { EpochState } from '../appraisal/epoch-state.js';
import { sameWorkload } from './identity.js';
import { checkTerms, grantGpus, refuseFailedGpus, type Terms } from './checks.js';
import { Decisions, type AuditFn, type DecisionCounter, type DenialLimits, type LeaseLogFn } from './decisions.js';
import { leaseView, newLease, type LiveLease } from './live-lease.js';
import { denialRecord, issueRecord, Kind, releaseRecord, signLease } from './records.js';
import { expireDue, warnExpiring } from './sweep.js';
import { LeaseTable } from './table.js';
import { addWatcher, tell, tellEnd } from './watchers.js';
import { checkIntent } from '../policy/intent.js';
import { recordedIntent, type IntentResolver, type RecordedIntent } from './intent.js';
import { checkDepth, childGpus, childLink, childScopes, type DeriveWants, type LineageLink } from './lineage.js';
import { endDescendants, revokeWithLineage } from './lineage-end.js';
import { authorizationEnded, checkStillAuthorized, grantAuthorization, preverify, type LeaseAuthorization, type Preverified } from './authorization.js';
import { MemoryAuthorizationIds, type AuthorizationIds } from './authz-replay.js';

export interface LeaseManagerOptions {
  signer: Signer;
  /** The policy in force; each grant and renewal is checked against it as it is then. */
  policy: Pick<PolicyInForce, 'current'>;
  /** Makes a record durable; rejects when it cannot (then nothing is granted). */
  audit: AuditFn;
  now?: () => number;
  /** Operator log for details a client must not see. */
  log?: LeaseLogFn;
  /** Watchers per lease, bounded so one client cannot grow memory without limit. */
  maxWatchersPerLease?: number;
  /** Told of every decision (for metrics): outcome, and the stable code of a refusal or revocation. */
  onDecision?: DecisionCounter;
  /**
   * Whether a holder process still runs (same pid, same start time): asked by endExitedHolders.
   * The daemon answers from /proc; without it, holders are not checked.
   */
  holderAlive?: (who: WorkloadIdentity) => boolean;
  /**
   * Whether the audit log is at its disk budget (audit/budget.ts): then nothing is granted or
   * renewed (AUDIT_BUDGET_EXHAUSTED); refusals, releases and revocations are still recorded.
   */
  logFull?: () => boolean | Promise<boolean>;
  /** Windows and bounds of the counting of repeated refusals (denial-aggregator.ts); defaults otherwise. */
  denialLimits?: Omit<DenialLimits, 'now'>;
  /** Authorization ids already used for a grant (authz-replay.ts); in memory only without it. */
  authorizationIds?: AuthorizationIds;
}

/** The longest a grant or renewal waits for the first epoch under a newly loaded policy. */
const MAX_POLICY_WAIT_MS = 10_000;

export class LeaseManager {
  private readonly table = new LeaseTable();
  private readonly decisions: Decisions;
  private epochState: EpochState | undefined;
  /** Requests waiting for the first epoch under a newly loaded policy. */
  private readonly epochWaiters = new Set<() => void>();
  private readonly now: () => number;
  private readonly authorizationIds: AuthorizationIds;

  constructor(private readonly opts: LeaseManagerOptions) {
    this.now = opts.now ?? Date.now;
    this.authorizationIds = opts.authorizationIds ?? new MemoryAuthorizationIds();
    this.decisions = new Decisions(opts.audit, opts.log, opts.onDecision, { ...opts.denialLimits, now: this.now });
  }

  get activeCount(): number {
    return this.table.size;
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
    const waiting = [...this.epochWaiters];
    this.epochWaiters.clear();
    for (const w of waiting) w();
    if (!epoch.pass) {
      const first = epoch.reasons[0];
      this.revokeAll('NOT_TRUSTED', first ? first.message : 'appraisal failed', epoch.epoch);
    } else if (epoch.badGpus?.length) {
      revokeWithLineage(this.table, this.decisions, (l) => l.gpus.some((g) => epoch.badGpus!.includes(g)),
        'NOT_TRUSTED', `GPU drift: ${epoch.badGpus.join(', ')}`, epoch.epoch);
    }
  }

  /** Fails the current epoch without a new appraisal (TPM gone, policy invalid, stale). */
  failEpoch(code: ErrorCode, reason: string): void {
    if (this.epochState?.pass) this.epochState = { ...this.epochState, pass: false, reasons: [{ code, message: reason }] };
    this.revokeAll(code, reason, this.epochState?.epoch ?? 0);
  }

  /**
   * `wantGpus`: UUIDs or indices the caller asks for, a subset of what its rule grants; empty
   * for all of them. A lease never covers a GPU that failed the current epoch.
   */
  async acquire(who: WorkloadIdentity, ruleName?: string, wantGpus: string[] = [], resolveIntent?: IntentResolver,
    authorizations: readonly string[] = []): Promise<LeaseView> {
    let terms: Terms;
    let gpus: string[];
    let intent: RecordedIntent | undefined;
    let authorized: { auth: LeaseAuthorization; durable: Promise<void> } | undefined;
    try {
      // Hashing artifacts may take long: done first, so the checks below stay one synchronous step.
      const resolved = resolveIntent ? await resolveIntent() : undefined;
      const settling = this.policySettled();
      if (settling) await settling;
      const measuring = this.logFull();
      const full = measuring ? await measuring : false;
      // Signatures are checked (asynchronously) against the rule's issuers before the checks below.
      const verifying = this.preverifyAuthorizations(who, ruleName, authorizations);
      const pre = verifying ? await verifying : undefined;
      terms = this.terms(who, ruleName, 'no policy rule matches this workload');
      gpus = grantGpus(terms.rule, terms.epoch, wantGpus);
      checkIntent(terms.rule.intent, resolved);
      intent = resolved && recordedIntent(resolved);
      refuseWhenLogFull(full);
      authorized = grantAuthorization(terms.rule, pre, this.opts.policy.current, { rule: terms.rule.name, gpus, intent: intent?.intent,
        intentSha256: intent?.digest }, this.authorizationIds, this.now());
    } catch (err) {
      await this.recordDenial(Kind.DENY, '', who, err as AttestdError);
      throw err;
    }
    const lease = newLease(terms, who, gpus, this.now());
    if (intent) lease.intent = intent;
    if (authorized) {
      // A lease never outlives its authorization.
      lease.authorization = authorized.auth;
      lease.expiresAtMs = Math.min(lease.expiresAtMs, authorized.auth.expiresAtMs);
    }
    lease.token = signLease(lease, terms.epoch, this.opts.signer);
    // Visible to revokeAll while the grant is being made durable.
    this.table.add(lease);
    this.decisions.beforeIssue(who);
    try {
      // The authorization ids are on disk before the grant is recorded and answered.
      if (authorized) await authorized.durable;
      await this.decisions.recordOrFail(issueRecord(Kind.GRANT, lease, terms.epoch), 'lease grant not recorded', { lease_id: lease.id });
    } catch (err) {
      this.table.forget(lease);
      throw err;
    }
    if (lease.revoked) {
      this.table.forget(lease);
      throw new AttestdError(lease.revoked.code, 'host became untrusted while granting');
    }
    lease.granted = true;
    this.table.schedule(lease);
    this.decisions.count('granted');
    return leaseView(lease);
  }

  async renew(who: WorkloadIdentity, leaseId: string): Promise<LeaseView> {
    const lease = this.holderLease(who, leaseId);
    let epoch: EpochState;
    try {
      // The rule must still exist and still match this workload under the policy in force.
      const settling = this.policySettled();
      if (settling) await settling;
      const measuring = this.logFull();
      const full = measuring ? await measuring : false;
      const terms = this.terms(who, lease.rule, 'the lease rule no longer matches');
      epoch = terms.epoch;
      // The rule's GPUs as the policy and the epoch resolve them now: a GPU the rule no longer
      // grants ends the renewal, like one that failed the epoch.
      if (lease.gpus.length > 0) grantGpus(terms.rule, epoch, lease.gpus);
      refuseFailedGpus(lease.gpus, epoch);
      // The intent the lease was granted with must still satisfy the rule as it is now.
      checkIntent(terms.rule.intent, lease.intent?.intent);
      checkStillAuthorized(terms.rule, lease.authorization, this.now());
      refuseWhenLogFull(full);
      // A derived lease is renewed only while its parent lives (and never past it, below), and
      // only while the rule as it is now still allows its depth.
      this.liveParent(lease.lineage);
      if (lease.lineage) checkDepth(lease.lineage.depth, terms.rule);
      lease.ttlMs = terms.rule.ttlMs;
      // A derived lease keeps its narrower scopes, as far as the rule still grants them.
      lease.scopes = lease.lineage ? lease.scopes.filter((s) => terms.rule.scopes.includes(s)) : terms.rule.scopes;
    } catch (err) {
      await this.recordDenial(Kind.RENEW_DENIED, leaseId, who, err as AttestdError);
      throw err;
    }
    const now = this.now();
    const next = { ...lease, epoch: epoch.epoch, issuedAtMs: now, renewal: lease.renewal + 1,
      expiresAtMs: Math.min(now + lease.ttlMs, epoch.validUntilMs, this.parentExpiry(lease.lineage), lease.authorization?.expiresAtMs ?? Infinity) };
    next.token = signLease(next, epoch, this.opts.signer);
    this.decisions.beforeIssue(who);
    await this.decisions.recordOrFail(issueRecord(Kind.RENEW, next, epoch), 'lease renewal not recorded', { lease_id: leaseId });
    if (lease.revoked || !this.table.has(leaseId)) {
      throw new AttestdError(lease.revoked?.code ?? 'LEASE_NOT_FOUND', 'lease ended while renewing');
    }
    Object.assign(lease, { epoch: next.epoch, issuedAtMs: now, renewal: next.renewal, expiresAtMs: next.expiresAtMs,
      token: next.token, expiringSent: false });
    this.table.schedule(lease);
    this.decisions.count('renewed');
    const view = leaseView(lease);
    tell(lease, { kind: 'RENEWED', leaseId, lease: view }, this.decisions.log);
    return view;
  }

  async release(who: WorkloadIdentity, leaseId: string): Promise<void> {
    const lease = this.holderLease(who, leaseId, true);
    this.table.forget(lease);
    this.decisions.count('released');
    tellEnd(lease, { kind: 'RELEASED', leaseId }, this.decisions.log);
    // The lease is gone either way; releasing can only make the host safer.
    const recorded = this.decisions.recordAfter(releaseRecord(lease), 'lease release not recorded', { lease_id: leaseId });
    // Its descendants end with it, recorded after its release.
    endDescendants(this.table, this.decisions, [leaseId], this.epochState?.epoch ?? 0);
    await recorded;
  }

  /**
   * A lease for `child`, a process the holder of `parentId` started, derived from that lease:
   * its rule (which must match the child) and intent, at most its scopes and GPUs, one
   * generation deeper within the rule's lineage.max_depth, never beyond its expiry. Only the
   * parent's very holder process may ask. `resolveChild` identifies the child and checks from
   * the kernel that it descends from the caller (the API layer's job); a refusal is recorded.
   */
  async derive(who: WorkloadIdentity, parentId: string, resolveChild: () => Promise<WorkloadIdentity>, want: DeriveWants): Promise<LeaseView> {
    let terms: Terms, child: WorkloadIdentity, parent: LiveLease, shape: { link: LineageLink; scopes: string[]; gpus: string[] };
    try {
      parent = this.holderLease(who, parentId);
      child = await resolveChild();
      const settling = this.policySettled();
      if (settling) await settling;
      const measuring = this.logFull();
      const full = measuring ? await measuring : false;
      // Checked after every wait: the parent may have ended meanwhile.
      this.liveParent({ parentId, rootId: parentId, depth: 0 });
      terms = this.terms(child, parent.rule, 'the parent lease\'s rule does not match the child process');
      shape = { link: childLink(parent, terms.rule), scopes: childScopes(parent, want.scopes), gpus: childGpus(parent, want.gpus, terms.epoch) };
      refuseFailedGpus(shape.gpus, terms.epoch);
      refuseWhenLogFull(full);
    } catch (err) {
      await this.recordDenial(Kind.DENY, '', who, err as AttestdError);
      throw err;
    }
    const lease = newLease(terms, child, shape.gpus, this.now());
    Object.assign(lease, { scopes: shape.scopes, lineage: shape.link, expiresAtMs: Math.min(lease.expiresAtMs, parent.expiresAtMs) });
    if (parent.intent) lease.intent = parent.intent;
    lease.token = signLease(lease, terms.epoch, this.opts.signer);
    // In the table while recorded, so that its parent's end (or a failed epoch) reaches it.
    this.table.add(lease);
    this.decisions.beforeIssue(child);
    try {
      await this.decisions.recordOrFail(issueRecord(Kind.GRANT, lease, terms.epoch), 'derived lease not recorded', { lease_id: lease.id, parent: parentId });
    } catch (err) {
      this.table.forget(lease);
      throw err;
    }
    if (lease.revoked) {
      this.table.forget(lease);
      throw new AttestdError(lease.revoked.code, 'the lease ended while deriving');
    }
    lease.granted = true;
    this.table.schedule(lease);
    this.decisions.count('granted');
    return leaseView(lease);
  }

  /** Registers a watcher; returns the current view and an unsubscribe function. */
  watch(who: WorkloadIdentity, leaseId: string, listener: (e: LeaseEvent) => void): { lease: LeaseView; cancel: () => void } {
    const lease = this.holderLease(who, leaseId, true);
    const cancel = addWatcher(lease, listener, this.opts.maxWatchersPerLease ?? 8);
    return { lease: leaseView(lease), cancel };
  }

  /**
   * A live lease as an attestation result states it: its view and its holder. The holder, or a
   * process of the holder's uid, may ask; a revoked or expired lease has no result.
   */
  describe(who: WorkloadIdentity, leaseId: string): { lease: LeaseView; holder: WorkloadIdentity; epoch: number } {
    const lease = this.holderLease(who, leaseId, true);
    if (lease.revoked) throw new AttestdError('LEASE_REVOKED', 'the lease was revoked');
    return { lease: leaseView(lease), holder: lease.who, epoch: lease.epoch };
  }

  /** Whether a lease is held, granted and neither expired nor revoked. */
  isLive(leaseId: string, token?: Uint8Array): boolean {
    const lease = this.table.get(leaseId);
    if (!lease || !lease.granted || lease.revoked || this.now() >= lease.expiresAtMs) return false;
    // A renewal supersedes every earlier token of the lease: only the current one is live.
    return token === undefined || Buffer.from(lease.token.token).equals(Buffer.from(token));
  }

  /**
   * Periodic housekeeping: expires leases past their time, warns holders when a quarter of
   * the lease's current span is left, and revokes everything once the epoch is older than the policy allows.
   */
  /**
   * Ends, at once, the leases whose holder process has exited (HOLDER_EXITED): a lease names a
   * process, and no other process may act on it. Each holder is asked about once per call,
   * however many leases it holds.
   */
  endExitedHolders(): void {
    const alive = this.opts.holderAlive;
    if (!alive) return;
    const verdicts = new Map<string, boolean>();
    const gone = (l: LiveLease): boolean => {
      const key = `${l.who.pid}:${l.who.startTime}`;
      let v = verdicts.get(key);
      if (v === undefined) verdicts.set(key, (v = alive(l.who)));
      return !v;
    };
    revokeWithLineage(this.table, this.decisions, (l) => l.granted && gone(l), 'HOLDER_EXITED', 'the holder process exited',
      this.epochState?.epoch ?? 0);
  }

  sweep(): void {
    this.decisions.denials.flushDue();
    const now = this.now();
    const e = this.epochState;
    if (e?.pass && now > e.validUntilMs) {
      this.failEpoch('ATTESTATION_STALE', 'no passing appraisal within max_age');
    }
    warnExpiring(this.table, this.decisions, now);
    const expired = expireDue(this.table, this.decisions, now, e?.epoch ?? 0);
    endDescendants(this.table, this.decisions, expired, e?.epoch ?? 0);
  }

  /**
   * After a policy reload: ends at once the leases whose signed authorizations the new policy
   * no longer honours (an id revoked, an issuer dropped or its key changed), each with the code
   * of what failed. Leases of a rule that no longer requires authorization are left alone.
   */
  async reviewAuthorizations(): Promise<void> {
    const policy = this.opts.policy.current;
    const ended = new Map<string, AttestdError>();
    for (const lease of this.table.all()) {
      if (!lease.granted || lease.revoked || !lease.authorization) continue;
      const rule = policy?.policy.rules.find((r) => r.name === lease.rule);
      const why = await authorizationEnded(rule, lease.authorization);
      if (why) ended.set(lease.id, why);
    }
    for (const code of new Set([...ended.values()].map((e) => e.code))) {
      revokeWithLineage(this.table, this.decisions, (l) => ended.get(l.id)?.code === code, code,
        `authorization no longer honoured by the policy in force: ${[...ended.values()].find((e) => e.code === code)!.message}`, this.epochState?.epoch ?? 0);
    }
  }

  /** Writes the counts of refused requests held in memory (at shutdown, before the final checkpoint). */
  flushDenials(): void {
    this.decisions.denials.flushAll();
  }

  /** Revokes every lease (also those whose grant is still being recorded) and tells watchers. */
  revokeAll(code: ErrorCode, reason: string, epoch: number): void {
    revokeWithLineage(this.table, this.decisions, () => true, code, reason, epoch);
  }

  /** The checks path of grants and renewals, against the epoch and the policy in force now. */
  /**
   * Never a grant or renewal under an epoch appraised with another policy than the one in
   * force: after a reload, a request waits for the first epoch under the new policy (the reload
   * triggers one at once), at most the policy's max_age and never over 10 s, then is refused
   * with POLICY_PENDING. Returns undefined, without yielding, when there is nothing to wait for,
   * so the checks and the lease's entry into the table stay in one synchronous step.
   */
  private policySettled(): Promise<void> | undefined {
    if (this.policyMatchesEpoch()) return undefined;
    const deadline = Date.now() + Math.min(MAX_POLICY_WAIT_MS, this.opts.policy.current?.policy.maxAgeMs ?? 0);
    return (async () => {
      while (!this.policyMatchesEpoch()) {
        const left = deadline - Date.now();
        if (left <= 0) throw new AttestdError('POLICY_PENDING', 'no epoch has been appraised under the policy in force yet');
        await this.nextEpoch(left);
      }
    })();
  }

  /** No policy, or no passing epoch (the checks refuse those), or a passing epoch under the policy in force. */
  private policyMatchesEpoch(): boolean {
    const policy = this.opts.policy.current;
    const e = this.epochState;
    return !policy || !e?.pass || e.policyDigest.equals(policy.digest);
  }

  /** Resolves at the next applyEpoch or after `ms`, whichever comes first. */
  private nextEpoch(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.epochWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.epochWaiters.add(done);
    });
  }

  /**
   * The presented authorizations verified against the issuers of the rule this request would
   * be granted under (the checks that follow find the same rule, or refuse). Resolves without
   * verifying when the rule requires none; a request the checks would refuse anyway is left to them.
   * Returns undefined, without yielding, when there is nothing to verify (see policySettled).
   */
  private preverifyAuthorizations(who: WorkloadIdentity, ruleName: string | undefined, jwts: readonly string[]): Promise<Preverified> | undefined {
    let rule;
    try {
      rule = this.terms(who, ruleName, 'no policy rule matches this workload').rule;
    } catch {
      return undefined;
    }
    return preverify(rule, this.opts.policy.current, jwts, this.now());
  }

  private terms(who: WorkloadIdentity, ruleName: string | undefined, noRule: string): Terms {
    return checkTerms({ epoch: this.epochState, now: this.now, policy: this.opts.policy.current, who, ruleName, noRule });
  }

  /**
   * Records a refusal before the caller hears of it, or counts it with identical ones
   * (decisions.ts); fails with AUDIT_UNAVAILABLE when it cannot record.
   */
  private async recordDenial(kind: number, leaseId: string, who: WorkloadIdentity, err: AttestdError): Promise<void> {
    this.decisions.count(kind === Kind.DENY ? 'denied' : 'renew_denied', err.code);
    await this.decisions.recordDenial(denialRecord(kind, leaseId, this.epochState?.epoch ?? 0, who, err), who);
  }

  /**
   * Whether the audit log is at its disk budget. Yields only when it is and is being measured
   * again; otherwise returns undefined without yielding (see policySettled).
   */
  private logFull(): Promise<boolean> | undefined {
    const full = this.opts.logFull?.() ?? false;
    return typeof full === 'boolean' ? (full ? Promise.resolve(true) : undefined) : full;
  }

  /** The parent of a derived lease if it is live; ANCESTOR_ENDED otherwise. Nothing for an acquired lease. */
  private liveParent(link: LineageLink | undefined): LiveLease | undefined {
    if (!link) return undefined;
    const parent = this.table.get(link.parentId);
    if (!parent || !parent.granted || parent.revoked || this.now() >= parent.expiresAtMs) {
      throw new AttestdError('ANCESTOR_ENDED', `parent lease ${link.parentId} has ended`);
    }
    return parent;
  }

  /** The furthest a derived lease may run: its parent's expiry; no bound for an acquired lease. */
  private parentExpiry(link: LineageLink | undefined): number {
    return this.liveParent(link)?.expiresAtMs ?? Number.POSITIVE_INFINITY;
  }

  /**
   * The lease if the caller may act on it: renewal needs the very holder process; watching
   * and releasing are open to processes of the holder's uid, which could signal the holder
   * anyway (so a supervisor or an operator shell of that user can follow or end it).
   */
  private holderLease(who: WorkloadIdentity, leaseId: string, sameUserSuffices = false): LiveLease {
    const lease = this.table.get(leaseId);
    if (!lease || !lease.granted) throw new AttestdError('LEASE_NOT_FOUND', 'no such lease');
    const allowed = sameUserSuffices ? lease.who.uid === who.uid : sameWorkload(lease.who, who);
    if (!allowed) throw new AttestdError('IDENTITY_MISMATCH', 'caller does not hold this lease');
    if (this.now() >= lease.expiresAtMs) throw new AttestdError('LEASE_EXPIRED', 'lease expired');
    return lease;
  }
}

/** At the audit log's disk budget nothing more is granted or renewed: grants are what fills it. */
function refuseWhenLogFull(full: boolean): void {
  if (full) throw new AttestdError('AUDIT_BUDGET_EXHAUSTED', 'the audit log is at its disk budget');
}
