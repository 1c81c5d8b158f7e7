/**
 * Little-endian bounded reader for TCG event logs and the UEFI structures inside them.
 *
 * The bytes are attacker-controlled: every read checks the bytes left in its window before
 * touching them, lengths are checked before anything is sliced, and an overrun throws
 * AttestdError('EVENTLOG_MALFORMED') naming the event and byte offset it was reading.
 * Slices are views of the reader's buffer; the parser copies the input once up front.
 */
import { AttestdError } from '../../base/errors.js';

export class LeReader {
  private pos: number;
  /** The event being read, for error messages; -1 when not inside a numbered event. */
  event = -1;
  eventOffset = 0;

  constructor(
    private readonly buf: Buffer,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.pos = start;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  u8(what = 'u8'): number {
    this.need(1, what);
    const v = this.buf[this.pos] as number;
    this.pos += 1;
    return v;
  }

  u16(what = 'u16'): number {
    this.need(2, what);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(what = 'u32'): number {
    this.need(4, what);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(what = 'u64'): bigint {
    this.need(8, what);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  /** A UINTN of `size` bytes (4 or 8), as a bigint. */
  uintn(size: 4 | 8, what = 'UINTN'): bigint {
    return size === 4 ? BigInt(this.u32(what)) : this.u64(what);
  }

  /** A length-checked view of the next `n` bytes. */
  bytes(n: number, what = 'bytes'): Buffer {
    if (!Number.isSafeInteger(n) || n < 0) this.fail(`${what}: bad length ${n}`);
    this.need(n, what);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** A u64 length that must fit in what is left; returned as a number. */
  length64(what: string): number {
    const n = this.u64(what);
    if (n > BigInt(this.remaining)) this.fail(`${what} ${n} exceeds remaining ${this.remaining} bytes`);
    return Number(n);
  }

  skip(n: number, what = 'bytes'): void {
    this.bytes(n, what);
  }

  need(n: number, what: string): void {
    if (n > this.end - this.pos) {
      this.fail(`${what} needs ${n} bytes, ${this.remaining} left`);
    }
  }

  fail(message: string): never {
    const where = this.event >= 0 ? `event ${this.event} at offset ${hexOffset(this.eventOffset)}: ` : '';
    throw new AttestdError('EVENTLOG_MALFORMED', where + message);
  }
}

export function hexOffset(n: number): string {
  return `0x${n.toString(16)}`;
}

/** The error every structural failure of a log raises, naming where it happened. */
export function malformedAt(event: number, offset: number, message: string): AttestdError {
  return new AttestdError('EVENTLOG_MALFORMED', `event ${event} at offset ${hexOffset(offset)}: ${message}`);
}
