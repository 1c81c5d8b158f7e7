/**
 * Record framing of the audit log: u32 big-endian payload length, u32 big-endian CRC32C of
 * the payload, payload. Shared by the writer, start-up recovery and the offline reader.
 */
import { crc32c } from './crc32c.js';

export const FRAME_HEADER = 8;
/** Upper bound of one record's payload; larger lengths are treated as damage. */
export const MAX_RECORD = 4 * 1024 * 1024;

export function encodeFrame(payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  frame.writeUInt32BE(crc32c(payload), 4);
  frame.set(payload, FRAME_HEADER);
  return frame;
}

export type FrameResult =
  | { kind: 'record'; payload: Buffer; next: number }
  | { kind: 'end' }
  /** Damage at `offset`; `reachesEnd` when the damaged frame extends to or past the end of the data. */
  | { kind: 'damaged'; offset: number; reachesEnd: boolean; why: string };

/** Reads the frame at `offset` of `data` without trusting its length field. */
export function readFrame(data: Buffer, offset: number): FrameResult {
  const remaining = data.length - offset;
  if (remaining === 0) return { kind: 'end' };
  if (remaining < FRAME_HEADER) return { kind: 'damaged', offset, reachesEnd: true, why: 'partial header' };
  const length = data.readUInt32BE(offset);
  if (length > MAX_RECORD) return { kind: 'damaged', offset, reachesEnd: true, why: `length ${length} over maximum` };
  const end = offset + FRAME_HEADER + length;
  if (end > data.length) return { kind: 'damaged', offset, reachesEnd: true, why: 'partial payload' };
  const payload = data.subarray(offset + FRAME_HEADER, end);
  if (crc32c(payload) !== data.readUInt32BE(offset + 4)) {
    return { kind: 'damaged', offset, reachesEnd: end === data.length, why: 'CRC mismatch' };
  }
  return { kind: 'record', payload, next: end };
}
