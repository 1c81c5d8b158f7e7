/**
 * Counts repeated refusals instead of recording each, so that a client repeating a refused
 * request cannot fill the disk (docs/audit-log.md, "Denials"). The refusal itself is unchanged:
 * the caller gets its code at once; only its record is shared.
 *
 * Two refusals are identical when their records would be identical but for the time, the epoch
 * and the reason's text: same kind, lease id and code, and the same workload (pid, start time,
 * uid, gid, executable path and digest, cgroup). The text is left out because a client chooses
 * parts of it (the GPU names it asks for); the count keeps the first one's. The first of a key is
 * recorded on its own, as before;
 * the identical ones after it within its window are counted, and the count is written as one
 * record (DenialRepeats) when the window ends. A window with repeats is followed by one twice
 * as long, up to maxWindowMs; a window without any ends the key, so the next refusal is a
 * first again. A grant or renewal of the workload writes its counts first and ends its keys,
 * so the log keeps the order "refused N times, then granted".
 *
 * Memory is bounded: at most maxKeys keys; past that, refusals are counted into one bucket
 * per (uid, kind, code), at most maxBuckets of them, and past that into one per (kind, code),
 * whose number the stable codes bound. A uid also opens new keys only at a bounded rate (a burst
 * of newKeysPerUid, then one per newKeyRefillMs), so one user starting process after process
 * gets a few records of their own and a count, not a record per process. Nothing is dropped:
 * every refusal is in some count.
 */
import type { WorkloadIdentity } from '../base/workload-identity.js';
import type { AuditBody } from '../audit/log.js';
import { attestd } from '../gen/proto.js';

const Scope = attestd.audit.v1.DenialRepeats.Scope;
type DecisionProps = attestd.audit.v1.LeaseDecision.$Properties;

export interface DenialAggregatorOptions {
  now: () => number;
  /** Writes a counted record (after the fact: the refusals it counts were answered already). */
  write: (body: AuditBody) => void;
  /** The first window of a key; default 1 s. */
  windowMs?: number;
  /** The longest window; default 16 s. */
  maxWindowMs?: number;
  /** Keys of identical refusals held at once; default 1024. */
  maxKeys?: number;
  /** Per-uid buckets held at once, once the keys are full; default 256. */
  maxBuckets?: number;
  /** New keys a uid may open at once; default 16. */
  newKeysPerUid?: number;
  /** Then one more per this many ms; default 1000. */
  newKeyRefillMs?: number;
}

/** What to do with one refusal: record it on its own (the first of its key), or nothing more (counted). */
export type DenialFate = 'record' | 'counted';

interface Entry {
  /** The record the counts are written as (its epoch is the latest refusal's). */
  decision: DecisionProps;
  scope: number;
  /** `uid:pid:startTime` of the workload, for IDENTICAL keys. */
  workload?: string;
  count: number;
  firstMs: number;
  lastMs: number;
  windowMs: number;
  windowEndMs: number;
}

/** Largest count one record carries (uint32); a key reaching it is written at once. */
const MAX_COUNT = 0xffff_ffff;
/** Uids whose rate of new keys is tracked at once; past it, a new uid's refusals go to buckets. */
const MAX_TRACKED_UIDS = 4096;

export class DenialAggregator {
  private readonly keys = new Map<string, Entry>();
  private readonly buckets = new Map<string, Entry>();
  private readonly byWorkload = new Map<string, Set<string>>();
  /** Per uid: new keys it may still open, as of atMs. */
  private readonly allowance = new Map<number, { tokens: number; atMs: number }>();

  constructor(private readonly opts: DenialAggregatorOptions) {}

  /** Keys and buckets held (for tests and the bound). */
  get size(): number {
    return this.keys.size + this.buckets.size;
  }

  /** Counts the refusal `decision` (a DENY or RENEW_DENIED record) of `who`, or says to record it. */
  note(decision: DecisionProps, who: WorkloadIdentity): DenialFate {
    const now = this.opts.now();
    const key = identityKey(decision);
    let entry = this.keys.get(key);
    if (entry && now >= entry.windowEndMs) {
      this.endWindow(key, entry, this.keys, now);
      entry = this.keys.get(key);
    }
    if (entry) {
      this.count(key, entry, this.keys, decision, now);
      return 'counted';
    }
    if (this.keys.size < (this.opts.maxKeys ?? 1024) && this.admit(who.uid, now)) {
      const workload = workloadKey(who);
      this.keys.set(key, this.fresh(decision, Scope.IDENTICAL, now, workload));
      let set = this.byWorkload.get(workload);
      if (!set) this.byWorkload.set(workload, (set = new Set()));
      set.add(key);
      return 'record';
    }
    this.countInBucket(decision, who, now);
    return 'counted';
  }

  /** Writes the counts of `who`'s refusals and ends their keys: it is about to be granted or renewed. */
  flushWorkload(who: WorkloadIdentity): void {
    const workload = workloadKey(who);
    const set = this.byWorkload.get(workload);
    if (!set) return;
    for (const key of set) {
      const entry = this.keys.get(key);
      if (entry) this.writeCount(entry);
      this.keys.delete(key);
    }
    this.byWorkload.delete(workload);
  }

  /** Ends every window that is over (called by the manager's sweep), and forgets uids back at their full allowance. */
  flushDue(): void {
    const now = this.opts.now();
    for (const table of [this.keys, this.buckets]) {
      for (const [key, entry] of table) if (now >= entry.windowEndMs) this.endWindow(key, entry, table, now);
    }
    for (const [uid, a] of this.allowance) if (this.tokens(a, now) >= this.burst) this.allowance.delete(uid);
  }

  private get burst(): number {
    return this.opts.newKeysPerUid ?? 16;
  }

  private tokens(a: { tokens: number; atMs: number }, now: number): number {
    return Math.min(this.burst, a.tokens + (now - a.atMs) / (this.opts.newKeyRefillMs ?? 1000));
  }

  /** Whether `uid` may open a new key now (and takes it from its allowance). */
  private admit(uid: number, now: number): boolean {
    let a = this.allowance.get(uid);
    if (!a) {
      if (this.allowance.size >= MAX_TRACKED_UIDS) return false;
      a = { tokens: this.burst, atMs: now };
    }
    const tokens = this.tokens(a, now);
    if (tokens < 1) return false;
    this.allowance.set(uid, { tokens: tokens - 1, atMs: now });
    return true;
  }

  /** Writes every count held and forgets every key (shutdown). */
  flushAll(): void {
    for (const table of [this.keys, this.buckets]) {
      for (const entry of table.values()) this.writeCount(entry);
      table.clear();
    }
    this.byWorkload.clear();
  }

  /** The table is full: count into the uid's bucket, or past maxBuckets into the code's. */
  private countInBucket(decision: DecisionProps, who: WorkloadIdentity, now: number): void {
    const uidKey = `${who.uid}:${decision.kind}:${decision.reasonCode}`;
    const anyKey = `*:${decision.kind}:${decision.reasonCode}`;
    let key = uidKey;
    let entry = this.buckets.get(uidKey);
    if (!entry && this.buckets.size >= (this.opts.maxBuckets ?? 256)) {
      key = anyKey;
      entry = this.buckets.get(anyKey);
    }
    if (entry && now >= entry.windowEndMs) {
      this.endWindow(key, entry, this.buckets, now);
      entry = this.buckets.get(key);
    }
    if (!entry) {
      const scope = key === uidKey ? Scope.SAME_UID : Scope.ANY;
      const bucket: DecisionProps = { kind: decision.kind, epoch: decision.epoch, reasonCode: decision.reasonCode,
        reason: 'counted together: the table of identical refusals was full',
        workload: scope === Scope.SAME_UID ? { uid: who.uid } : undefined };
      entry = this.fresh(bucket, scope, now);
      entry.firstMs = now;
      this.buckets.set(key, entry);
    }
    this.count(key, entry, this.buckets, decision, now);
  }

  private fresh(decision: DecisionProps, scope: number, now: number, workload?: string): Entry {
    const windowMs = this.opts.windowMs ?? 1000;
    return { decision, scope, workload, count: 0, firstMs: 0, lastMs: 0, windowMs, windowEndMs: now + windowMs };
  }

  private count(key: string, entry: Entry, table: Map<string, Entry>, decision: DecisionProps, now: number): void {
    if (entry.count === 0) entry.firstMs = now;
    entry.count++;
    entry.lastMs = now;
    entry.decision = { ...entry.decision, epoch: decision.epoch };
    if (entry.count >= MAX_COUNT) this.endWindow(key, entry, table, now);
  }

  /** A window with repeats is written and followed by a longer one; a quiet one ends the key. */
  private endWindow(key: string, entry: Entry, table: Map<string, Entry>, now: number): void {
    if (entry.count === 0) {
      table.delete(key);
      if (entry.workload !== undefined) this.forgetWorkloadKey(entry.workload, key);
      return;
    }
    this.writeCount(entry);
    entry.count = 0;
    entry.windowMs = Math.min(entry.windowMs * 2, this.opts.maxWindowMs ?? 16_000);
    entry.windowEndMs = now + entry.windowMs;
  }

  private writeCount(entry: Entry): void {
    if (entry.count === 0) return;
    this.opts.write({ leaseDecision: { ...entry.decision,
      repeats: { count: entry.count, firstMs: entry.firstMs, lastMs: entry.lastMs, scope: entry.scope } } });
  }

  private forgetWorkloadKey(workload: string, key: string): void {
    const set = this.byWorkload.get(workload);
    set?.delete(key);
    if (set?.size === 0) this.byWorkload.delete(workload);
  }
}

/** The record but for its epoch and reason text, as bytes: identical refusals have the same key. */
function identityKey(decision: DecisionProps): string {
  const bytes = attestd.audit.v1.LeaseDecision.encode({ ...decision, epoch: 0, reason: '' }).finish();
  return Buffer.from(bytes).toString('latin1');
}

function workloadKey(who: WorkloadIdentity): string {
  return `${who.uid}:${who.pid}:${who.startTime}`;
}
