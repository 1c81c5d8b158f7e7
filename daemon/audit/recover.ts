/**
 * Start-up scan of the audit log: rebuilds the Merkle compact range and finds where the
 * last whole record ends. Only damage confined to the tail (a crash mid-append) may be cut
 * off; anything else is corruption and stops the daemon, because cutting it would lose
 * records that were acknowledged.
 */
import type { FileHandle } from 'node:fs/promises';
import { attestd } from '../gen/proto.js';
import { AttestdError } from '../errors.js';
import { CompactRange } from './merkle.js';
import { readFrame } from './frame.js';

export interface Recovered {
  tree: CompactRange;
  /** Byte offset just past the last whole record. */
  goodOffset: number;
  fileSize: number;
}

export async function recoverLog(fh: FileHandle): Promise<Recovered> {
  const data = await fh.readFile();
  const tree = new CompactRange();
  let offset = 0;
  while (true) {
    const frame = readFrame(data, offset);
    if (frame.kind === 'end') break;
    if (frame.kind === 'damaged') {
      if (!frame.reachesEnd) {
        throw new AttestdError('AUDIT_CORRUPT', `audit record ${tree.size} at offset ${offset}: ${frame.why}, with data after it`);
      }
      break;
    }
    let seq: number;
    try {
      seq = attestd.audit.v1.AuditRecord.decode(frame.payload).seq;
    } catch (err) {
      throw new AttestdError('AUDIT_CORRUPT', `audit record ${tree.size} at offset ${offset} does not decode`, { cause: err });
    }
    if (seq !== tree.size) {
      throw new AttestdError('AUDIT_CORRUPT', `audit record at offset ${offset} has seq ${seq}, expected ${tree.size}`);
    }
    tree.append(frame.payload);
    offset = frame.next;
  }
  return { tree, goodOffset: offset, fileSize: data.length };
}
