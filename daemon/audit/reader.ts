/**
 * Reads a log folder (live or copied) segment by segment, frame by frame, for the offline
 * verifier, proofs and export. It only frames: every check of content is the verifier's.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { listSegments, segmentName } from './segments.js';
import { readFrame, type FrameResult } from './frame.js';

export interface SegmentData {
  name: string;
  firstSeq: number;
  sealed: boolean;
  data: Buffer;
}

/** Every segment in order: sealed ones, then the open one. */
export async function* readSegments(dir: string): AsyncGenerator<SegmentData> {
  const listing = await listSegments(dir);
  const names = [
    ...listing.sealed.map((f) => ({ first: f, sealed: true, name: segmentName(f, 'seg') })),
    ...listing.open.filter((f) => !listing.sealed.includes(f)).map((f) => ({ first: f, sealed: false, name: segmentName(f, 'open') })),
  ];
  for (const s of names) yield { name: s.name, firstSeq: s.first, sealed: s.sealed, data: await readFile(join(dir, s.name)) };
}

export interface FramedRecord {
  segment: string;
  offset: number;
  payload: Buffer;
}

/** Frames of one segment; stops at the first damaged frame and reports it. */
export function* framesOf(seg: SegmentData): Generator<FramedRecord | (FrameResult & { kind: 'damaged'; segment: string })> {
  let offset = 0;
  while (true) {
    const f = readFrame(seg.data, offset);
    if (f.kind === 'end') return;
    if (f.kind === 'damaged') {
      yield { ...f, segment: seg.name };
      return;
    }
    yield { segment: seg.name, offset, payload: f.payload };
    offset = f.next;
  }
}
