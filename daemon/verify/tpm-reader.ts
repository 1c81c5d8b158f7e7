/**
 * TPM 2.0 marshalled structures (TPM 2.0 Part 2): the one byte reader set up for them, and a
 * writer.
 *
 * A TpmReader is the bounded ByteReader, big-endian, failing with QUOTE_MALFORMED, plus the
 * sized buffer (TPM2B) whose size is checked against the structure's maximum before anything
 * is sliced. It copies its input once, so the slices it returns never alias the caller's
 * buffer.
 */
import { AttestdError } from '../base/errors.js';
import { ByteReader } from './bytes/reader.js';

export class TpmReader extends ByteReader {
  constructor(bytes: Uint8Array) {
    super(bytes instanceof Uint8Array ? Buffer.from(bytes) : bytes, 'be', 'QUOTE_MALFORMED');
  }

  /** A TPM2B: u16 size, then that many bytes; the size is checked against `max` first. */
  tpm2b(max: number, what = 'TPM2B'): Buffer {
    const size = this.u16(what);
    if (size > max) this.fail(`${what}: size ${size} exceeds maximum ${max}`);
    return this.bytes(size, what);
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
