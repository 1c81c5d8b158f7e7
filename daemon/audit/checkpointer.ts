/**
 * Signed checkpoints of the audit log: at most every `intervalMs` while records arrive, and at
 * shutdown, a C2SP tlog-checkpoint of the durable tree is signed as a C2SP signed note with
 * the session key, appended to the log as a record, and, once that record is durable, written
 * to the `checkpoint` file (atomically replaced) for publication.
 */
import { AttestdError } from '../base/errors.js';
import { formatCheckpoint } from '../verify/checkpoint.js';
import { signNote } from '../verify/signed-note.js';
import type { Signer } from '../base/signer.js';
import type { AuditLog } from './log.js';
import { CHECKPOINT_FILE } from './segments.js';
import { writeFileDurably } from './files.js';

export interface CheckpointerOptions {
  log: AuditLog;
  signer: Signer;
  /** Log origin and signing key name, e.g. "gpu-node-7/attestd". */
  origin: string;
  intervalMs?: number;
  onError?: (err: unknown) => void;
}

export class Checkpointer {
  private timer: NodeJS.Timeout | undefined;
  /** Tree size the latest checkpoint covers; its own record makes the log one larger. */
  private covered = -1;
  private running: Promise<void> | undefined;

  constructor(private readonly opts: CheckpointerOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.checkpoint(), this.opts.intervalMs ?? 1000);
    this.timer.unref();
  }

  /** Whether records arrived since the latest checkpoint (its own record aside). */
  get dirty(): boolean {
    return this.opts.log.size > this.covered + 1;
  }

  /** Writes a checkpoint if anything arrived since the last; one at a time. */
  checkpoint(): Promise<void> {
    if (!this.dirty) return this.running ?? Promise.resolve();
    this.running ??= this.write().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async write(): Promise<void> {
    const { log, signer, origin } = this.opts;
    const size = log.size;
    const note = signNote(formatCheckpoint({ origin, size, root: log.root(), extensions: [] }), origin, signer);
    try {
      const seq = await log.append({ checkpoint: { note } });
      if (seq !== size) {
        // Something was appended in between; the next round covers it.
        this.covered = Math.max(this.covered, size - 1);
      } else {
        this.covered = size;
      }
      await writeFileDurably(log.dir, CHECKPOINT_FILE, Buffer.from(note));
    } catch (err) {
      this.opts.onError?.(err instanceof AttestdError ? err : new AttestdError('AUDIT_WRITE_FAILED', String(err), { cause: err }));
    }
  }

  /** Stops the timer and writes a final checkpoint if needed. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
    await this.checkpoint();
  }
}
