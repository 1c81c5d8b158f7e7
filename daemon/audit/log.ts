/**
 * The append-only audit log: records (length + CRC32C + protobuf AuditRecord) appended to
 * bounded segment files and made durable by group commit (one write and one fdatasync for
 * every record that arrived while the previous flush was running). A promise returned by
 * append() settles only after the record is on stable storage: callers send no answer that
 * depends on a record before that ("no record, no lease"). A full segment is sealed (seal.ts):
 * its compact range is stored beside it and it is linked to its immutable name.
 */
import { mkdir, open, readFile, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { attestd } from '../gen/proto.js';
import { AttestdError } from '../base/errors.js';
import { CompactRange } from '../verify/merkle/tree.js';
import { scanSegment } from './recover.js';
import { encodeFrame } from './frame.js';
import { listSegments, readRange, segmentName } from './segments.js';
import { fsyncDir } from './files.js';
import { finishSeals, sealSegment, type SealStep } from './seal.js';

type AuditRecordProps = attestd.audit.v1.AuditRecord.$Properties;
export type AuditBody = Omit<AuditRecordProps, 'seq' | 'timeMs'>;

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

export interface AuditLogOptions {
  /** Folder of the segment files. */
  dir: string;
  /** A segment is sealed once it holds at least this many bytes. */
  segmentBytes?: number;
  /** Clock in Unix milliseconds; injectable for tests. */
  now?: () => number;
  /** Called with details when a write fails (the operator log). */
  onWriteError?: (err: unknown) => void;
  /** Called before each step of sealing a segment; a throw fails the step (fault injection in tests). */
  beforeSealStep?: (step: SealStep) => void;
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
  /**
   * The open file has its sealed name: nothing more may be written to it. Read off the folder
   * when a seal fails, cleared once the next segment is open; while it holds, appends fail.
   */
  private linked = false;
  private readonly listeners: ((size: number, bytes: number) => void)[] = [];

  private constructor(
    private readonly opts: AuditLogOptions,
    private fh: FileHandle,
    private segmentFirst: number,
    private offset: number,
    private readonly tree: CompactRange,
  ) {}

  /**
   * Opens (creating if needed) the log in `dir`. Sealed segments are trusted to be as their
   * range files say; the open segment is scanned: framing, CRC and sequence of every record.
   * A torn tail (a crash mid-append) is cut off and the cut is itself recorded; damage with
   * whole records after it refuses to open (AUDIT_CORRUPT) rather than drop acknowledged records.
   */
  static async open(opts: AuditLogOptions): Promise<AuditLog> {
    const { dir } = opts;
    try {
      await mkdir(dir, { recursive: true, mode: 0o750 });
    } catch (err) {
      throw new AttestdError('AUDIT_WRITE_FAILED', `cannot create audit folder ${dir}: ${(err as Error).message}`, { cause: err });
    }
    let listing = await listSegments(dir);
    for (const t of listing.temporary) await unlink(join(dir, t)).catch(() => undefined);
    // A crash mid-seal: finish what it left (see seal.ts).
    await finishSeals(dir, listing);
    listing = await listSegments(dir);
    if (listing.open.length > 1) throw new AttestdError('AUDIT_CORRUPT', `${dir} has ${listing.open.length} open segments`);

    const tree = await sealedRange(dir, listing.sealed, listing.ranges);
    const openFirst = listing.open[0] ?? tree.size;
    if (openFirst !== tree.size) {
      throw new AttestdError('AUDIT_CORRUPT', `open segment starts at ${openFirst}, sealed segments end at ${tree.size}`);
    }
    const path = join(dir, segmentName(openFirst, 'open'));
    let fh: FileHandle;
    try {
      fh = await open(path, 'a+', 0o640);
    } catch (err) {
      throw new AttestdError('AUDIT_WRITE_FAILED', `cannot open audit segment ${path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      if (!(await fh.stat()).isFile()) throw new AttestdError('AUDIT_WRITE_FAILED', `audit segment ${path} is not a regular file`);
      const data = await fh.readFile();
      const scan = scanSegment(data, tree, segmentName(openFirst, 'open'), true);
      const log = new AuditLog(opts, fh, openFirst, scan.goodOffset, tree);
      if (listing.open.length === 0) await fsyncDir(dir);
      if (scan.tornBecause) {
        await fh.truncate(scan.goodOffset);
        await fh.datasync();
        await log.append({ logRecovery: { truncatedAtOffset: scan.goodOffset, droppedBytes: data.length - scan.goodOffset, recordsKept: tree.size } });
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

  get dir(): string {
    return this.opts.dir;
  }

  /** Called after every durable batch with the new size in records and the batch's length in bytes. */
  onDurable(listener: (size: number, bytes: number) => void): void {
    this.listeners.push(listener);
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
      if (this.offset >= (this.opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES) || this.linked) {
        await this.seal().catch((err) => {
          // Before the link step the segment stays open and keeps growing, and sealing is
          // retried after the next batch; after it, the next batch first finishes the seal.
          this.opts.onWriteError?.(err);
        });
      }
    }
    this.flushing = false;
  }

  private async flushBatch(batch: Pending[]): Promise<void> {
    if (this.linked) {
      // A seal stopped after the segment got its sealed name: finish it before writing on.
      try {
        await this.seal();
      } catch (err) {
        this.opts.onWriteError?.(err);
        for (const p of batch) p.reject(new AttestdError('AUDIT_WRITE_FAILED', `audit segment seal unfinished: ${(err as Error).message}`, { cause: err }));
        return;
      }
    }
    const now = (this.opts.now ?? Date.now)();
    const startSize = this.tree.size;
    const frames: Buffer[] = [];
    const payloads: Uint8Array[] = [];
    for (let i = 0; i < batch.length; i++) {
      const payload = attestd.audit.v1.AuditRecord.encode({ ...batch[i]!.body, seq: startSize + i, timeMs: now }).finish();
      payloads.push(payload);
      frames.push(encodeFrame(payload));
    }
    const bytes = Buffer.concat(frames);
    try {
      await writeAll(this.fh, bytes);
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
    for (const l of this.listeners) l(this.tree.size, bytes.length);
  }

  /** Seals the open segment (range file, immutable name, read-only) and starts the next. */
  private async seal(): Promise<void> {
    const { dir } = this.opts;
    const first = this.segmentFirst;
    const target = { dir, first, tree: this.tree, bytes: this.offset, beforeStep: this.opts.beforeSealStep };
    const next = await sealSegment(target, this.linked ? 'unlink' : 'range').catch(async (err) => {
      // Whether the file has its sealed name (the link step landed) decides where a retry resumes.
      this.linked = await isSealed(dir, first);
      throw err;
    });
    await this.fh.close();
    this.fh = next;
    this.segmentFirst = this.tree.size;
    this.offset = 0;
    this.linked = false;
  }

  /** Waits for pending appends, then closes the file. */
  async close(): Promise<void> {
    while (this.flushing) await new Promise((r) => setImmediate(r));
    this.closed = true;
    await this.fh.close().catch(() => undefined);
  }
}

/** The compact range at the end of the sealed segments: from the last range file, else by re-hashing. */
async function sealedRange(dir: string, sealed: number[], ranges: Set<number>): Promise<CompactRange> {
  const last = sealed.at(-1);
  if (last !== undefined && ranges.has(last)) {
    // The range file is written before the segment is sealed; it ends where the next begins,
    // unless it does not describe its segment (then the segments are re-hashed below).
    const r = await readRange(dir, last);
    const bytes = (await stat(join(dir, segmentName(last, 'seg')))).size;
    if (!r.segment || (r.segment.bytes === bytes && r.segment.records === r.range.size - last)) return r.range;
  }
  const tree = new CompactRange();
  for (const first of sealed) {
    if (first !== tree.size) throw new AttestdError('AUDIT_CORRUPT', `segment ${first} does not follow record ${tree.size}`);
    scanSegment(await readFile(join(dir, segmentName(first, 'seg'))), tree, segmentName(first, 'seg'), false);
  }
  return tree;
}

async function writeAll(fh: FileHandle, bytes: Buffer): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done);
    if (bytesWritten <= 0) throw new Error('short write');
    done += bytesWritten;
  }
}

/** Whether the segment starting at `first` has its sealed name. */
async function isSealed(dir: string, first: number): Promise<boolean> {
  return stat(join(dir, segmentName(first, 'seg'))).then(() => true, () => false);
}
