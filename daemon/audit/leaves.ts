/** Leaf hashes of every record in a log folder, for proofs (a 1,000,000-record log is 32 MB of hashes). */
import { leafHash } from '../verify/merkle/tree.js';
import { framesOf, readSegments } from './reader.js';
import { attestd } from '../gen/proto.js';

export interface LogLeaves {
  hashes: Buffer[];
  /** Records that are checkpoints: their seq and note. */
  checkpoints: { seq: number; note: string }[];
  /** Where each record came from: segment name and offset, for export. */
  places: { segment: string; offset: number; length: number }[];
}

export async function readLeaves(dir: string): Promise<LogLeaves> {
  const out: LogLeaves = { hashes: [], checkpoints: [], places: [] };
  for await (const seg of readSegments(dir)) {
    for (const f of framesOf(seg)) {
      if (!('payload' in f)) throw new Error(`${f.segment}: damaged record at offset ${f.offset}: ${f.why}`);
      const seq = out.hashes.length;
      out.hashes.push(leafHash(f.payload));
      out.places.push({ segment: f.segment, offset: f.offset, length: f.payload.length + 8 });
      const rec = attestd.audit.v1.AuditRecord.decode(f.payload);
      if (rec.checkpoint) out.checkpoints.push({ seq, note: rec.checkpoint.note ?? '' });
    }
  }
  return out;
}
