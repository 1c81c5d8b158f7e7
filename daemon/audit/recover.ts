/**
 * Start-up scan of a segment: continues the Merkle compact range over its records and finds
 * where the last whole record ends. Only damage confined to the tail of the open segment (a
 * crash mid-append) may be cut off; anything else is corruption and stops the daemon,
 * because cutting it would lose records that were acknowledged. A tail of zero bytes is such
 * a crash too: the file grew but the data never reached the disk (no record there was ever
 * acknowledged, since acknowledgement waits for fdatasync of the data).
 */
import { attestd } from '../gen/proto.js';
import { AttestdError } from '../base/errors.js';
import type { CompactRange } from '../verify/merkle/tree.js';
import { readFrame } from './frame.js';

export interface ScanResult {
  /** Byte offset just past the last whole record. */
  goodOffset: number;
  /** Why the tail was cut, when it was. */
  tornBecause?: string;
}

/** Appends every record of `data` to `tree`, checking that each has the next sequence number. */
export function scanSegment(data: Buffer, tree: CompactRange, segment: string, allowTornTail: boolean): ScanResult {
  let offset = 0;
  while (true) {
    if (allowTornTail && isZeroTail(data, offset)) return { goodOffset: offset, tornBecause: 'zero-filled tail' };
    const frame = readFrame(data, offset);
    if (frame.kind === 'end') return { goodOffset: offset };
    if (frame.kind === 'damaged') {
      if (!frame.reachesEnd || !allowTornTail) {
        throw new AttestdError('AUDIT_CORRUPT', `${segment}: record ${tree.size} at offset ${offset}: ${frame.why}`);
      }
      return { goodOffset: offset, tornBecause: frame.why };
    }
    let seq: number;
    try {
      seq = attestd.audit.v1.AuditRecord.decode(frame.payload).seq;
    } catch (err) {
      throw new AttestdError('AUDIT_CORRUPT', `${segment}: record ${tree.size} at offset ${offset} does not decode`, { cause: err });
    }
    if (seq !== tree.size) {
      throw new AttestdError('AUDIT_CORRUPT', `${segment}: record at offset ${offset} has seq ${seq}, expected ${tree.size}`);
    }
    tree.append(frame.payload);
    offset = frame.next;
  }
}

/** Whether everything from `offset` to the end is zero bytes (and there is something). */
function isZeroTail(data: Buffer, offset: number): boolean {
  if (offset >= data.length) return false;
  for (let i = offset; i < data.length; i++) if (data[i] !== 0) return false;
  return true;
}
