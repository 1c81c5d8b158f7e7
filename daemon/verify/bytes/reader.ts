/**
 * The bounded byte reader every binary decoder in verify/ reads through: TPM structures and
 * GPU measurement encodings (big-endian); TCG and CC event logs, UEFI structures, Intel TDX
 * quotes, SEV-SNP reports and certificate tables, and SPDM reports (little-endian).
 *
 * Every byte it reads is attacker-controlled. A read checks the bytes left in the reader's
 * window before it touches the buffer; a length is checked to be a non-negative integer that
 * fits before anything is sliced; a failure throws AttestdError with the code the decoder
 * chose (QUOTE_MALFORMED, EVENTLOG_MALFORMED, CVM_REPORT_MALFORMED, ...), its message prefixed
 * with where the decoder says it is.
 *
 * Nothing is copied: bytes() returns a view of the buffer the reader was given, so a decoder
 * whose results must not alias its caller's memory copies the input once before reading (or,
 * for input that is mostly padding, copies out what it keeps). Reads are on the hot path of
 * every epoch: an integer read allocates nothing but a u64's bigint, hex() and zeros() read in
 * place without a view, and no closure or message is built unless a read fails.
 */
import { AttestdError, type ErrorCode } from '../../base/errors.js';

export type ByteOrder = 'le' | 'be';

export class ByteReader {
  private readonly buf: Buffer;
  private readonly le: boolean;
  private pos = 0;
  private limit: number;

  /**
   * @param order byte order of every multi-byte integer read
   * @param code the code every failure throws
   * @param where called only when a read fails: a prefix naming the position for the message
   */
  constructor(
    bytes: Uint8Array,
    order: ByteOrder,
    readonly code: ErrorCode,
    private readonly where?: () => string,
  ) {
    if (!(bytes instanceof Uint8Array)) throw new AttestdError(code, 'the input is not bytes');
    this.buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.le = order === 'le';
    this.limit = this.buf.length;
  }

  /** Position in the reader's buffer (a sub-reader counts from its parent's start). */
  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.limit - this.pos;
  }

  u8(what = 'u8'): number {
    const p = this.take(1, what);
    return this.buf[p] as number;
  }

  u16(what = 'u16'): number {
    const p = this.take(2, what);
    const b = this.buf;
    return this.le ? (b[p] as number) | ((b[p + 1] as number) << 8) : ((b[p] as number) << 8) | (b[p + 1] as number);
  }

  /** A 24-bit integer, as SPDM lengths are. */
  u24(what = 'u24'): number {
    const p = this.take(3, what);
    const b = this.buf;
    return this.le
      ? (b[p] as number) | ((b[p + 1] as number) << 8) | ((b[p + 2] as number) << 16)
      : ((b[p] as number) << 16) | ((b[p + 1] as number) << 8) | (b[p + 2] as number);
  }

  u32(what = 'u32'): number {
    const p = this.take(4, what);
    return this.le ? this.buf.readUInt32LE(p) : this.buf.readUInt32BE(p);
  }

  u64(what = 'u64'): bigint {
    const p = this.take(8, what);
    return this.le ? this.buf.readBigUInt64LE(p) : this.buf.readBigUInt64BE(p);
  }

  /** A 64-bit length that must fit in what is left; returned as a number. */
  length64(what: string): number {
    const n = this.u64(what);
    if (n > BigInt(this.remaining)) this.fail(`${what} ${n} exceeds remaining ${this.remaining} bytes`);
    return Number(n);
  }

  /** A view of the next `n` bytes. */
  bytes(n: number, what = 'bytes'): Buffer {
    const p = this.take(this.length(n, what), what);
    return this.buf.subarray(p, p + n);
  }

  /** The next `n` bytes as lowercase hex, without a view of them. */
  hex(n: number, what = 'bytes'): string {
    const p = this.take(this.length(n, what), what);
    return this.buf.toString('hex', p, p + n);
  }

  /** Moves past the next `n` bytes and says whether all of them are zero, as reserved bytes must be. */
  zeros(n: number, what = 'reserved'): boolean {
    const p = this.take(this.length(n, what), what);
    const b = this.buf;
    for (let i = p; i < p + n; i++) if (b[i] !== 0) return false;
    return true;
  }

  skip(n: number, what = 'bytes'): void {
    this.take(this.length(n, what), what);
  }

  /** A reader over the next `n` bytes, with this one's order, code and position prefix; this one moves past them. */
  sub(n: number, what: string): ByteReader {
    const p = this.take(this.length(n, what), what);
    const r = new ByteReader(this.buf, this.le ? 'le' : 'be', this.code, this.where);
    r.pos = p;
    r.limit = p + n;
    return r;
  }

  /** Throws unless `n` more bytes are left, without reading them: for a count checked before a loop. */
  need(n: number, what: string): void {
    if (this.length(n, what) > this.limit - this.pos) this.overrun(n, what);
  }

  /** Throws unless every byte has been read: trailing bytes are never ignored. */
  end(what = 'structure'): void {
    if (this.pos !== this.limit) this.fail(`${what} has ${this.limit - this.pos} trailing bytes`);
  }

  fail(message: string): never {
    throw new AttestdError(this.code, this.where === undefined ? message : this.where() + message);
  }

  /** Moves past `n` bytes and returns where they start. */
  private take(n: number, what: string): number {
    const p = this.pos;
    if (n > this.limit - p) this.overrun(n, what);
    this.pos = p + n;
    return p;
  }

  private length(n: number, what: string): number {
    if (!Number.isSafeInteger(n) || n < 0) this.fail(`${what}: bad length ${n}`);
    return n;
  }

  private overrun(n: number, what: string): never {
    this.fail(`${what} needs ${n} bytes, ${this.limit - this.pos} left`);
  }
}
