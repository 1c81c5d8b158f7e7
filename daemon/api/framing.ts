/**
 * Socket framing of the workload API: u32 big-endian length, then that many bytes of one
 * protobuf envelope. The length comes from an untrusted peer: it is checked against the
 * maximum before anything is buffered for it.
 */
import { AttestdError } from '../base/errors.js';

export const MAX_FRAME = 64 * 1024;

export function frameMessage(payload: Uint8Array): Buffer {
  if (payload.length > MAX_FRAME) throw new AttestdError('FRAME_TOO_LARGE', `frame of ${payload.length} bytes`);
  const out = Buffer.allocUnsafe(4 + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.set(payload, 4);
  return out;
}

export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxFrame = MAX_FRAME) {}

  /** Bytes of an incomplete frame waiting for more data. */
  get pending(): number {
    return this.buffered;
  }

  /** Feeds bytes; returns every complete frame. Throws FRAME_TOO_LARGE on an oversized length. */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Buffer[] = [];
    while (this.buffered >= 4) {
      const head = this.peek(4);
      const length = head.readUInt32BE(0);
      if (length > this.maxFrame) throw new AttestdError('FRAME_TOO_LARGE', `frame length ${length} exceeds ${this.maxFrame}`);
      if (this.buffered < 4 + length) break;
      const frame = this.take(4 + length);
      frames.push(frame.subarray(4));
    }
    return frames;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const frame = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return frame;
  }
}
