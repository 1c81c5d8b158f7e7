/**
 * The append-only audit log: length + CRC32C + protobuf AuditRecord, appended to one file
 * and made durable by group commit (one write and one fdatasync for every record that
 * arrived while the previous flush was running). A promise returned by append() settles
 * only after the record is on stable storage: callers send no answer that depends on a
 * record before that ("no record, no lease").
 */
import { open, type FileHandle } from 'node:fs/promises';
import { attestd } from '../gen/proto.js';
import { AttestdError } from '../errors.js';
import { CompactRange } from './merkle.js';
import { recoverLog } from './recover.js';
import { encodeFrame } from './frame.js';

type AuditRecordProps = attestd.audit.v1.AuditRecord.$Properties;
export type AuditBody = Omit<AuditRecordProps, 'seq' | 'timeMs'>;

export interface AuditLogOptions {
  path: string;
  /** Clock in Unix milliseconds; injectable for tests. */
  now?: () => number;
  /** Called with details when a write fails (the operator log). */
  onWriteError?: (err: unknown) => void;
}

interface Pending {
  body: AuditBody;
  resolve: (seq: number) => void;
  reject: (err: AttestdError) => void;
}

export class AuditLog {
  private readonly pending: Pending[] = [];
  private flushing = false;
  private closed = false;
  private offset: number;

  private constructor(
    private readonly fh: FileHandle,
    private readonly tree: CompactRange,
    offset: number,
    private readonly opts: AuditLogOptions,
  ) {
    this.offset = offset;
  }

  /**
   * Opens (creating if needed) the log at `path`, checks every record's framing, CRC and
   * sequence number, and truncates a torn tail left by a crash mid-append; the truncation
   * is itself recorded. A damaged record with intact records after it is corruption, not a
   * torn tail: that refuses to open (AUDIT_CORRUPT) rather than drop acknowledged records.
   */
  static async open(opts: AuditLogOptions): Promise<AuditLog> {
    let fh: FileHandle;
    try {
      fh = await open(opts.path, 'a+', 0o640);
    } catch (err) {
      throw new AttestdError('AUDIT_WRITE_FAILED', `cannot open audit log ${opts.path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      if (!(await fh.stat()).isFile()) throw new AttestdError('AUDIT_WRITE_FAILED', `audit log ${opts.path} is not a regular file`);
      const { tree, goodOffset, fileSize } = await recoverLog(fh);
      const log = new AuditLog(fh, tree, goodOffset, opts);
      if (goodOffset < fileSize) {
        await fh.truncate(goodOffset);
        await fh.datasync();
        await log.append({
          logRecovery: { truncatedAtOffset: goodOffset, droppedBytes: fileSize - goodOffset, recordsKept: tree.size },
        });
      }
      return log;
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  /** Number of durable records. */
  get size(): number {
    return this.tree.size;
  }

  /** RFC 6962 root over the durable records. */
  root(): Buffer {
    return this.tree.root();
  }

  /** Appends a record; resolves with its sequence number once it is durable. */
  append(body: AuditBody): Promise<number> {
    if (this.closed) return Promise.reject(new AttestdError('AUDIT_WRITE_FAILED', 'audit log is closed'));
    return new Promise<number>((resolve, reject) => {
      this.pending.push({ body, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        // Let the appends of the current tick join this batch.
        setImmediate(() => void this.flushLoop());
      }
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.pending.length);
      await this.flushBatch(batch);
    }
    this.flushing = false;
  }

  private async flushBatch(batch: Pending[]): Promise<void> {
    const now = (this.opts.now ?? Date.now)();
    const startSize = this.tree.size;
    const frames: Buffer[] = [];
    const payloads: Uint8Array[] = [];
    for (let i = 0; i < batch.length; i++) {
      const record = { ...batch[i]!.body, seq: startSize + i, timeMs: now };
      const payload = attestd.audit.v1.AuditRecord.encode(record).finish();
      payloads.push(payload);
      frames.push(encodeFrame(payload));
    }
    const bytes = Buffer.concat(frames);
    try {
      await writeAll(this.fh, bytes, this.offset);
      await this.fh.datasync();
    } catch (err) {
      this.opts.onWriteError?.(err);
      // Cut back whatever part of the batch reached the file so the next append starts on a
      // record boundary; if even that fails, the log refuses every later append.
      await this.fh.truncate(this.offset).catch(() => {
        this.closed = true;
      });
      for (const p of batch) {
        p.reject(new AttestdError('AUDIT_WRITE_FAILED', `audit write failed: ${(err as Error).message}`, { cause: err }));
      }
      return;
    }
    this.offset += bytes.length;
    for (const payload of payloads) this.tree.append(payload);
    batch.forEach((p, i) => p.resolve(startSize + i));
  }

  /** Waits for pending appends, then closes the file. */
  async close(): Promise<void> {
    while (this.flushing) await new Promise((r) => setImmediate(r));
    this.closed = true;
    await this.fh.close().catch(() => undefined);
  }
}

async function writeAll(fh: FileHandle, bytes: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position + done);
    if (bytesWritten <= 0) throw new Error('short write');
    done += bytesWritten;
  }
}
