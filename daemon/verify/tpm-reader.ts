/**
 * Big-endian reader and writer for TPM 2.0 marshalled structures (TPM 2.0 Part 2).
 *
 * The bytes a reader sees are attacker-controlled: every read checks the remaining length
 * first, a sized buffer (TPM2B) is checked against the structure's maximum before anything
 * is copied, and any overrun throws AttestdError('QUOTE_MALFORMED'). Nothing here allocates
 * more than the input already holds.
 */
import { AttestdError } from '../base/errors.js';

export class TpmReader {
  private readonly buf: Buffer;
  private pos = 0;

  constructor(bytes: Uint8Array) {
    // A view, not a copy: slices returned to callers are copied in bytes().
    this.buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  u8(): number {
    this.need(1, 'u8');
    const v = this.buf.readUInt8(this.pos);
    this.pos += 1;
    return v;
  }

  u16(): number {
    this.need(2, 'u16');
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4, 'u32');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): bigint {
    this.need(8, 'u64');
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /** `n` raw bytes, copied so the result does not alias the input. */
  bytes(n: number, what = 'bytes'): Buffer {
    if (!Number.isSafeInteger(n) || n < 0) malformed(`${what}: bad length ${n}`);
    this.need(n, what);
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }

  /** A TPM2B: u16 size, then that many bytes; the size is checked against `max` first. */
  tpm2b(max: number, what = 'TPM2B'): Buffer {
    const size = this.u16();
    if (size > max) malformed(`${what}: size ${size} exceeds maximum ${max}`);
    return this.bytes(size, what);
  }

  /** Throws unless every byte has been read: trailing bytes are never ignored. */
  end(what = 'structure'): void {
    if (this.remaining !== 0) malformed(`${what}: ${this.remaining} trailing bytes`);
  }

  private need(n: number, what: string): void {
    if (n > this.buf.length - this.pos) {
      malformed(`${what}: needs ${n} bytes at offset ${this.pos}, ${this.remaining} left`);
    }
  }
}

/** Builds marshalled TPM structures; used to encode selections and in tests. */
export class TpmWriter {
  private readonly parts: Buffer[] = [];

  u8(v: number): this {
    const b = Buffer.alloc(1);
    b.writeUInt8(v);
    this.parts.push(b);
    return this;
  }

  u16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    this.parts.push(b);
    return this;
  }

  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    this.parts.push(b);
    return this;
  }

  u64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    this.parts.push(b);
    return this;
  }

  bytes(v: Uint8Array): this {
    this.parts.push(Buffer.from(v));
    return this;
  }

  tpm2b(v: Uint8Array): this {
    if (v.length > 0xffff) {
      throw new AttestdError('INVALID_ARGUMENT', `TPM2B of ${v.length} bytes does not fit a u16 size`);
    }
    return this.u16(v.length).bytes(v);
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export function malformed(message: string): never {
  throw new AttestdError('QUOTE_MALFORMED', message);
}
