/**
 * The audit log's disk budget (docs/audit-log.md, "Disk budget"): how many bytes the folder may
 * hold, how many it holds, and the state that follows, so the host says so well before the disk
 * is full rather than when a write fails. At 90% the state is LOG_NEARLY_FULL (a warning); at
 * the budget it is LOG_FULL, and the lease manager grants and renews nothing more
 * (AUDIT_BUDGET_EXHAUSTED), while revocations, releases, epochs and checkpoints, which fail-closed
 * and the auditor need, are still written as long as the disk takes them.
 *
 * The budget in force is the configured one or what the filesystem can still take less a
 * reserve, whichever is less: a disk filled by something else counts too. The folder is measured
 * at start and every refreshMs; in between, each durable batch adds its bytes. While the log is
 * full, a grant measures again first (at most every 250 ms), so space freed is seen at once.
 */
import { readdir, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';

export type LogUsageState = 'OK' | 'LOG_NEARLY_FULL' | 'LOG_FULL';

export interface LogUsage {
  state: LogUsageState;
  usedBytes: number;
  budgetBytes: number;
}

/** The part of statfs(2) the budget reads. */
export interface FsSpace {
  bavail: number;
  bsize: number;
  blocks: number;
}

export interface AuditBudgetOptions {
  dir: string;
  /** The configured budget in bytes; undefined: what the filesystem can take. */
  budgetBytes?: number;
  /** Left free on the filesystem; default the smaller of 64 MiB and a tenth of the filesystem. */
  reserveBytes?: number;
  /** Share of the budget from which the state is LOG_NEARLY_FULL; default 0.9. */
  nearlyFull?: number;
  /** How often the folder and the filesystem are measured again; default 5 s. */
  refreshMs?: number;
  /** Told of every change of state (the operator log). */
  onState?: (usage: LogUsage) => void;
  /** Injectable for tests. */
  statfs?: (dir: string) => Promise<FsSpace>;
}

const MiB = 1024 * 1024;

export class AuditBudget {
  private used = 0;
  private budget = 0;
  private last: LogUsageState | undefined;
  private timer: NodeJS.Timeout | undefined;
  private measuredAtMs = 0;
  private measuring: Promise<boolean> | undefined;

  private constructor(private readonly opts: AuditBudgetOptions) {}

  /** Measures the folder and the filesystem once; refresh() and start() keep it current. */
  static async open(opts: AuditBudgetOptions): Promise<AuditBudget> {
    const b = new AuditBudget(opts);
    await b.refresh();
    return b;
  }

  /** Measures again every refreshMs (a failed measurement keeps the previous figures). */
  start(): void {
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), this.opts.refreshMs ?? 5000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** A durable batch of `bytes` was appended. */
  added(bytes: number): void {
    this.used += bytes;
    this.tell();
  }

  /** At the budget: nothing more may be granted or renewed. */
  full(): boolean {
    return this.usage().state === 'LOG_FULL';
  }

  /**
   * Whether the log is full, for a decision about to be made: false at once when it is not; when
   * it is, measured again first unless that was done within the last 250 ms.
   */
  fullNow(): boolean | Promise<boolean> {
    if (!this.full()) return false;
    if (Date.now() - this.measuredAtMs < 250) return true;
    this.measuring ??= this.refresh().then(() => this.full(), () => true).finally(() => {
      this.measuring = undefined;
    });
    return this.measuring;
  }

  usage(): LogUsage {
    const { used, budget } = this;
    const state = used >= budget ? 'LOG_FULL' : used >= budget * (this.opts.nearlyFull ?? 0.9) ? 'LOG_NEARLY_FULL' : 'OK';
    return { state, usedBytes: used, budgetBytes: budget };
  }

  /** Sums the folder's files and asks the filesystem how much it can still take. */
  async refresh(): Promise<void> {
    const { dir } = this.opts;
    let used = 0;
    for (const name of await readdir(dir)) {
      const st = await stat(join(dir, name)).catch(() => undefined);
      if (st?.isFile()) used += st.size;
    }
    const fs = await (this.opts.statfs ?? statfs)(dir);
    const reserve = this.opts.reserveBytes ?? Math.min(64 * MiB, Math.floor(fs.blocks * fs.bsize / 10));
    // What the folder holds plus what the filesystem can still give it, less the reserve.
    const room = Math.max(0, used + fs.bavail * fs.bsize - reserve);
    this.used = used;
    this.budget = Math.min(this.opts.budgetBytes ?? Infinity, room);
    this.measuredAtMs = Date.now();
    this.tell();
  }

  private tell(): void {
    const u = this.usage();
    if (u.state === this.last) return;
    this.last = u.state;
    this.opts.onState?.(u);
  }
}
