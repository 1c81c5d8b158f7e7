/**
 * Segment files of the audit log. Records live in segments named after the sequence number
 * of their first record: `<20 digits>.seg` for sealed (immutable, read-only) segments and
 * `<20 digits>.open` for the one being appended to. Beside each sealed segment a
 * `<20 digits>.range` holds the Merkle compact range at its end and the segment's record count
 * and byte length, so a restart hashes only the open segment and can still tell a range that
 * does not describe its segment. The latest signed checkpoint is in `checkpoint`.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AttestdError } from '../base/errors.js';
import { CompactRange } from '../verify/merkle/tree.js';

export const CHECKPOINT_FILE = 'checkpoint';
const NAME = /^(\d{20})\.(seg|open|range)$/;

export function segmentName(firstSeq: number, kind: 'seg' | 'open' | 'range'): string {
  return `${String(firstSeq).padStart(20, '0')}.${kind}`;
}

export interface SegmentListing {
  /** First sequence numbers of sealed segments, ascending. */
  sealed: number[];
  /** First sequence numbers that have a range file. */
  ranges: Set<number>;
  /** First sequence numbers of open segments (normally at most one). */
  open: number[];
  /** Leftover temporary files from an interrupted write. */
  temporary: string[];
}

export async function listSegments(dir: string): Promise<SegmentListing> {
  const out: SegmentListing = { sealed: [], ranges: new Set(), open: [], temporary: [] };
  for (const name of await readdir(dir)) {
    if (name.endsWith('.tmp')) {
      out.temporary.push(name);
      continue;
    }
    const m = NAME.exec(name);
    if (!m) continue;
    const first = Number(m[1]);
    if (!Number.isSafeInteger(first)) throw new AttestdError('AUDIT_CORRUPT', `segment name out of range: ${name}`);
    if (m[2] === 'seg') out.sealed.push(first);
    else if (m[2] === 'open') out.open.push(first);
    else out.ranges.add(first);
  }
  out.sealed.sort((a, b) => a - b);
  out.open.sort((a, b) => a - b);
  return out;
}

/** A sealed segment's range file: the tree at its end, and what the segment itself holds. */
export interface SegmentRange {
  range: CompactRange;
  /** Records in the segment and its length in bytes; absent in ranges written before version 2. */
  segment?: { records: number; bytes: number };
}

export function encodeRange(range: CompactRange, segment: { records: number; bytes: number }): Buffer {
  const { size, hashes } = range.state();
  return Buffer.from(JSON.stringify({ version: 2, size, hashes: hashes.map((h) => h.toString('hex')), ...segment }) + '\n');
}

export async function readRange(dir: string, firstSeq: number): Promise<SegmentRange> {
  const text = await readFile(join(dir, segmentName(firstSeq, 'range')), 'utf8');
  try {
    const v = JSON.parse(text) as { version: number; size: number; hashes: string[]; records?: unknown; bytes?: unknown };
    if ((v.version !== 1 && v.version !== 2) || !Array.isArray(v.hashes)) throw new Error('unknown range format');
    const range = CompactRange.fromState(v.size, v.hashes.map((h) => Buffer.from(h, 'hex')));
    if (v.version === 1) return { range };
    if (!Number.isSafeInteger(v.records) || !Number.isSafeInteger(v.bytes)) throw new Error('range without its segment\'s count and length');
    return { range, segment: { records: v.records as number, bytes: v.bytes as number } };
  } catch (err) {
    throw new AttestdError('AUDIT_CORRUPT', `range file of segment ${firstSeq} is damaged`, { cause: err });
  }
}
