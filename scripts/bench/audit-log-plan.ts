/**
 * The shape of a busy daemon's audit log, planned record by record before anything is signed:
 * SessionStart and PolicyLoad, an epoch every policy interval of log time, a checkpoint every
 * second of log time (the checkpointer's interval), and between them lease decisions at
 * RECORDS_PER_MS: grants, renewals and releases of a pool of live leases, a few denials, and
 * expiries should a lease outlive its epoch. Records reach the disk in group-commit batches
 * that share one timestamp, as AuditLog writes them.
 *
 * The plan follows the lease manager's rules: a lease is granted or renewed under the newest
 * passing epoch that is already durable, expires at min(issued + ttl, epoch valid_until), is
 * renewed only before it expires, and its release record carries its latest token.
 */
import { randomBytes } from 'node:crypto';
import { attestd } from '../../daemon/gen/proto.js';

const Kind = attestd.audit.v1.LeaseDecision.Kind;

/** 5,000 records per second of log time: the lease benchmark's target rate. */
export const RECORDS_PER_MS = 5;
/** Records written per durable batch (one write + fdatasync each). */
export const BATCH = 256;
/** The checkpointer's default interval. */
export const CHECKPOINT_MS = 1000;
/** Live leases the pool hovers between. */
const MIN_ACTIVE = 1000;
const MAX_ACTIVE = 3000;
const SHARE = { deny: 0.01, grant: 0.25, renew: 0.49 };
/** Tokens per job handed to a signing worker. */
const CHUNK_TOKENS = 4000;

/** Filled in by a signing worker. */
export interface TokenRef {
  token?: Uint8Array;
  signature?: Uint8Array;
}

export interface PlannedEpoch {
  epoch: number;
  appraisedAtMs: number;
  validUntilMs: number;
}

export type Slot =
  | { kind: 'sessionStart' | 'policyLoad' | 'checkpoint' }
  | { kind: 'epoch'; epoch: PlannedEpoch }
  | { kind: 'lease'; decision: number; leaseId: string; epoch: number; workload: number; expiresAtMs: number; ref: TokenRef }
  | { kind: 'deny'; epoch: number }
  | { kind: 'expire'; epoch: number; leaseIds: string[] };

export interface Batch {
  start: number;
  timeMs: number;
  slots: Slot[];
}

/** Claims of every token a chunk needs, in slot order, with the refs they fill. */
export interface Chunk {
  batches: Batch[];
  refs: TokenRef[];
  claims: { leaseIds: string[]; epochs: number[]; workloads: number[]; issuedAtMs: number[]; expiresAtMs: number[]; renewals: number[] };
}

export interface PlanCounts {
  grants: number;
  renewals: number;
  releases: number;
  denials: number;
  expiries: number;
  epochs: number;
  checkpoints: number;
}

interface Live {
  id: string;
  workload: number;
  epoch: number;
  expiresAtMs: number;
  renewal: number;
  ref: TokenRef;
}

/** mulberry32: a small seeded generator, so the mix is the same in every generation. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class LogPlan {
  readonly counts: PlanCounts = { grants: 0, renewals: 0, releases: 0, denials: 0, expiries: 0, epochs: 0, checkpoints: 0 };
  private size = 0;
  private readonly rand = prng(0x5eed);
  /** Live leases, least recently issued first: renewals and releases take the head. */
  private live: Live[] = [];
  private head = 0;
  private inForce: PlannedEpoch | undefined;
  private lastEpochMs = 0;
  private lastCheckpointMs = 0;

  constructor(
    private readonly records: number,
    private readonly startMs: number,
    private readonly p: { intervalMs: number; maxAgeMs: number; ttlMs: number; workloads: number },
  ) {}

  timeAt(size: number): number {
    return this.startMs + Math.floor(size / RECORDS_PER_MS);
  }

  /** The next batches holding about CHUNK_TOKENS tokens; undefined once the log is planned. */
  nextChunk(): Chunk | undefined {
    const chunk: Chunk = { batches: [], refs: [], claims: { leaseIds: [], epochs: [], workloads: [], issuedAtMs: [], expiresAtMs: [], renewals: [] } };
    while (chunk.refs.length < CHUNK_TOKENS) {
      const b = this.nextBatch(chunk);
      if (!b) break;
      chunk.batches.push(b);
    }
    return chunk.batches.length > 0 ? chunk : undefined;
  }

  private nextBatch(chunk: Chunk): Batch | undefined {
    const start = this.size;
    const timeMs = this.timeAt(start);
    const batch: Batch = { start, timeMs, slots: [] };
    if (start >= this.records) return undefined;
    if (start === 0) {
      batch.slots.push({ kind: 'sessionStart' }, { kind: 'policyLoad' });
    } else if (!this.inForce) {
      // The first appraisal runs before any lease can be granted.
      batch.slots.push({ kind: 'epoch', epoch: this.newEpoch(timeMs) });
    } else if (start === this.records - 1) {
      // Shutdown: the checkpointer's final checkpoint covers everything before it.
      batch.slots.push({ kind: 'checkpoint' });
      this.counts.checkpoints++;
    } else {
      const n = Math.min(BATCH, this.records - 1 - start);
      const epochAt = timeMs >= this.lastEpochMs + this.p.intervalMs ? Math.min(3, n - 1) : -1;
      let checkpointAt = timeMs >= this.lastCheckpointMs + CHECKPOINT_MS ? Math.min(100, n - 1) : -1;
      if (checkpointAt === epochAt) checkpointAt = -1;
      // Leases use the epoch in force when the batch began; a new one applies once durable.
      const epoch = this.inForce;
      let next: PlannedEpoch | undefined;
      for (let i = 0; i < n; i++) {
        if (i === epochAt) {
          next = this.newEpoch(timeMs);
          batch.slots.push({ kind: 'epoch', epoch: next });
        } else if (i === checkpointAt) {
          batch.slots.push({ kind: 'checkpoint' });
          this.counts.checkpoints++;
          this.lastCheckpointMs = timeMs;
        } else {
          batch.slots.push(this.leaseSlot(timeMs, epoch, chunk));
        }
      }
      if (next) this.inForce = next;
    }
    this.size += batch.slots.length;
    return batch;
  }

  private newEpoch(timeMs: number): PlannedEpoch {
    this.counts.epochs++;
    this.lastEpochMs = timeMs;
    const e = { epoch: this.counts.epochs, appraisedAtMs: timeMs, validUntilMs: timeMs + this.p.maxAgeMs };
    if (!this.inForce) this.inForce = e;
    return e;
  }

  private leaseSlot(timeMs: number, epoch: PlannedEpoch, chunk: Chunk): Slot {
    const active = this.live.length - this.head;
    const first = this.live[this.head];
    if (first && first.expiresAtMs <= timeMs) {
      // The sweeper's record of leases that ran out unrenewed.
      const leaseIds: string[] = [];
      while (this.live[this.head] && this.live[this.head]!.expiresAtMs <= timeMs) leaseIds.push(this.take().id);
      this.counts.expiries++;
      return { kind: 'expire', epoch: epoch.epoch, leaseIds };
    }
    const r = this.rand();
    if (r < SHARE.deny) {
      this.counts.denials++;
      return { kind: 'deny', epoch: epoch.epoch };
    }
    const grant = active < MIN_ACTIVE || (active < MAX_ACTIVE && r < SHARE.deny + SHARE.grant);
    if (grant) {
      const lease: Live = { id: randomBytes(16).toString('hex'), workload: Math.floor(this.rand() * this.p.workloads), epoch: 0, expiresAtMs: 0, renewal: 0, ref: {} };
      this.counts.grants++;
      return this.issue(lease, Kind.GRANT, timeMs, epoch, chunk);
    }
    const lease = this.take();
    if (r < SHARE.deny + SHARE.grant + SHARE.renew) {
      lease.renewal++;
      this.counts.renewals++;
      return this.issue(lease, Kind.RENEW, timeMs, epoch, chunk);
    }
    this.counts.releases++;
    return { kind: 'lease', decision: Kind.RELEASE, leaseId: lease.id, epoch: lease.epoch, workload: lease.workload, expiresAtMs: lease.expiresAtMs, ref: lease.ref };
  }

  /** A grant or renewal: a token signed a moment before the batch was committed. */
  private issue(lease: Live, decision: number, timeMs: number, epoch: PlannedEpoch, chunk: Chunk): Slot {
    const issuedAtMs = timeMs - Math.floor(this.rand() * 3);
    lease.epoch = epoch.epoch;
    lease.expiresAtMs = Math.min(issuedAtMs + this.p.ttlMs, epoch.validUntilMs);
    lease.ref = {};
    const c = chunk.claims;
    c.leaseIds.push(lease.id);
    c.epochs.push(lease.epoch);
    c.workloads.push(lease.workload);
    c.issuedAtMs.push(issuedAtMs);
    c.expiresAtMs.push(lease.expiresAtMs);
    c.renewals.push(lease.renewal);
    chunk.refs.push(lease.ref);
    this.live.push(lease);
    return { kind: 'lease', decision, leaseId: lease.id, epoch: lease.epoch, workload: lease.workload, expiresAtMs: lease.expiresAtMs, ref: lease.ref };
  }

  private take(): Live {
    const lease = this.live[this.head++]!;
    if (this.head > 65536) {
      this.live = this.live.slice(this.head);
      this.head = 0;
    }
    return lease;
  }
}
