/**
 * Little-endian reader for Intel quote structures and the CC event log.
 *
 * Every byte it reads is attacker-controlled: each read checks the remaining length before
 * touching the buffer, lengths are validated before any slice is taken, and every overrun
 * throws AttestdError with the code the caller chose (CVM_REPORT_MALFORMED for quotes,
 * CCEL_MALFORMED for event logs). Nothing is allocated beyond what the input already holds.
 */
import { AttestdError, type ErrorCode } from '../../base/errors.js';

export class LeReader {
  private readonly buf: Buffer;
  private pos: number;
  private readonly limit: number;

  constructor(bytes: Uint8Array, private readonly code: ErrorCode, start = 0, end = bytes.byteLength) {
    this.buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end > this.buf.length || start > end) {
      throw new AttestdError(code, `reader window ${start}..${end} is outside ${this.buf.length} bytes`);
    }
    this.pos = start;
    this.limit = end;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.limit - this.pos;
  }

  u8(what: string): number {
    this.need(1, what);
    const v = this.buf.readUInt8(this.pos);
    this.pos += 1;
    return v;
  }

  u16(what: string): number {
    this.need(2, what);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  /** `n` bytes copied out, so results never alias the caller's buffer. */
  bytes(n: number, what: string): Buffer {
    if (!Number.isSafeInteger(n) || n < 0) this.fail(`${what}: bad length ${n}`);
    this.need(n, what);
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }

  /** A sub-reader over the next `n` bytes; this reader moves past them. */
  sub(n: number, what: string): LeReader {
    if (!Number.isSafeInteger(n) || n < 0) this.fail(`${what}: bad length ${n}`);
    this.need(n, what);
    const r = new LeReader(this.buf, this.code, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }

  skip(n: number, what: string): void {
    this.need(n, what);
    this.pos += n;
  }

  end(what: string): void {
    if (this.remaining !== 0) this.fail(`${what}: ${this.remaining} unexpected trailing bytes`);
  }

  fail(message: string): never {
    throw new AttestdError(this.code, message);
  }

  private need(n: number, what: string): void {
    if (n > this.limit - this.pos) {
      this.fail(`${what}: needs ${n} bytes at offset ${this.pos}, ${this.limit - this.pos} left`);
    }
  }
}
