/**
 * Sealing a full segment, as steps that can each be repeated and resumed from wherever a
 * crash or an error left them:
 *   1. `range`: the segment's range file (tree at its end, record count, byte length), durable;
 *   2. `link`: the segment's immutable `.seg` name, a hard link to the open file (an existing
 *      link to the same file counts as done);
 *   3. `unlink`: the `.open` name dropped (already gone counts as done);
 *   4. `chmod`: the segment made read-only;
 *   5. `next`: the next open segment created.
 * Once `link` is done the file is sealed: nothing more may be written to it, so a seal that
 * fails after that point stops appends until it completes (see AuditLog). At start-up
 * `finishSeals` completes what a crash interrupted.
 */
import { chmod, link, open, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { AttestdError } from '../base/errors.js';
import type { CompactRange } from '../verify/merkle/tree.js';
import { fsyncDir, writeFileDurably } from './files.js';
import { encodeRange, segmentName, type SegmentListing } from './segments.js';

export type SealStep = 'range' | 'link' | 'unlink' | 'chmod' | 'next';

export interface SealTarget {
  dir: string;
  /** First sequence number of the segment being sealed. */
  first: number;
  /** The tree at the segment's end; its size is where the next segment starts. */
  tree: CompactRange;
  /** The segment's length in bytes. */
  bytes: number;
  /** Called before each step; a throw fails that step (fault injection in tests). */
  beforeStep?: (step: SealStep) => void;
}

/** Runs the steps from `from` on; returns the next open segment's handle. */
export async function sealSegment(t: SealTarget, from: 'range' | 'unlink'): Promise<FileHandle> {
  const { dir, first } = t;
  const step = (s: SealStep) => t.beforeStep?.(s);
  if (from === 'range') {
    step('range');
    await writeFileDurably(dir, segmentName(first, 'range'), encodeRange(t.tree, { records: t.tree.size - first, bytes: t.bytes }));
    step('link');
    await linkOnce(join(dir, segmentName(first, 'open')), join(dir, segmentName(first, 'seg')));
    await fsyncDir(dir);
  }
  step('unlink');
  await unlink(join(dir, segmentName(first, 'open'))).catch(ignore('ENOENT'));
  await fsyncDir(dir);
  step('chmod');
  await chmod(join(dir, segmentName(first, 'seg')), 0o440);
  step('next');
  const next = await open(join(dir, segmentName(t.tree.size, 'open')), 'a+', 0o640);
  try {
    await fsyncDir(dir);
  } catch (err) {
    await next.close().catch(() => undefined);
    throw err;
  }
  return next;
}

/**
 * Start-up: completes seals a crash interrupted. An open name beside a sealed one of the same
 * first record is the same file (link done, unlink not): it goes. A range file of a segment
 * that was never linked is stale (the segment is still open): it goes. Sealed segments are
 * made read-only.
 */
export async function finishSeals(dir: string, listing: SegmentListing): Promise<void> {
  for (const first of listing.open.filter((f) => listing.sealed.includes(f))) {
    await unlink(join(dir, segmentName(first, 'open')));
  }
  for (const first of [...listing.ranges].filter((f) => !listing.sealed.includes(f))) {
    await unlink(join(dir, segmentName(first, 'range')));
  }
  for (const first of listing.sealed) await chmod(join(dir, segmentName(first, 'seg')), 0o440);
  await fsyncDir(dir);
}

/** link(2), where an existing link to the same file means the step was done before. */
async function linkOnce(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const [a, b] = await Promise.all([stat(from), stat(to)]);
    if (a.ino !== b.ino || a.dev !== b.dev) {
      throw new AttestdError('AUDIT_CORRUPT', `${to} exists and is not the segment being sealed`);
    }
  }
}

function ignore(code: string) {
  return (err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== code) throw err;
  };
}
