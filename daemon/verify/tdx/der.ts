/**
 * A small, bounded DER reader: just enough ASN.1 for X.509 certificates, CRLs and Intel's
 * SGX certificate extensions. Only definite lengths and single-byte tags are accepted (DER
 * has no others for these structures); every length is checked against its enclosing
 * element before use, and child counts are capped. Failures throw AttestdError with the
 * code the caller passes.
 */
import { AttestdError, type ErrorCode } from '../../errors.js';

export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  content: number;
  /** Offset just past the element. */
  end: number;
}

export const TAG = {
  BOOLEAN: 0x01, INTEGER: 0x02, BIT_STRING: 0x03, OCTET_STRING: 0x04, NULL: 0x05, OID: 0x06, ENUMERATED: 0x0a,
  UTC_TIME: 0x17, GENERALIZED_TIME: 0x18, SEQUENCE: 0x30, SET: 0x31,
} as const;

const MAX_CHILDREN = 4096;

export class Der {
  constructor(readonly buf: Buffer, private readonly code: ErrorCode) {}

  fail(message: string): never {
    throw new AttestdError(this.code, message);
  }

  /** The element starting at `pos`, which must end at or before `limit`. */
  read(pos: number, limit = this.buf.length): Tlv {
    if (pos + 2 > limit) this.fail(`DER: truncated element at ${pos}`);
    const tag = this.buf[pos]!;
    if ((tag & 0x1f) === 0x1f) this.fail(`DER: multi-byte tag at ${pos}`);
    let len = this.buf[pos + 1]!;
    let content = pos + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4) this.fail(`DER: unsupported length form at ${pos}`);
      if (content + n > limit) this.fail(`DER: truncated length at ${pos}`);
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + this.buf[content + i]!;
      content += n;
    }
    if (len > limit - content) this.fail(`DER: element at ${pos} overruns its container`);
    return { tag, start: pos, content, end: content + len };
  }

  /** Reads the element at `pos` and checks its tag. */
  expect(pos: number, tag: number, limit: number, what: string): Tlv {
    const t = this.read(pos, limit);
    if (t.tag !== tag) this.fail(`DER: ${what} has tag 0x${t.tag.toString(16)}, expected 0x${tag.toString(16)}`);
    return t;
  }

  children(parent: Tlv): Tlv[] {
    const out: Tlv[] = [];
    let pos = parent.content;
    while (pos < parent.end) {
      if (out.length >= MAX_CHILDREN) this.fail('DER: too many elements');
      const t = this.read(pos, parent.end);
      out.push(t);
      pos = t.end;
    }
    return out;
  }

  bytes(t: Tlv): Buffer {
    return this.buf.subarray(t.content, t.end);
  }

  raw(t: Tlv): Buffer {
    return this.buf.subarray(t.start, t.end);
  }

  oid(t: Tlv): string {
    if (t.tag !== TAG.OID) this.fail('DER: expected an OBJECT IDENTIFIER');
    const b = this.bytes(t);
    if (b.length === 0 || b.length > 64) this.fail('DER: bad OBJECT IDENTIFIER length');
    const arcs: number[] = [];
    let v = 0;
    for (let i = 0; i < b.length; i++) {
      const byte = b[i]!;
      if (v > 0x1ffffffffffff) this.fail('DER: OBJECT IDENTIFIER arc too large');
      v = v * 128 + (byte & 0x7f);
      if ((byte & 0x80) === 0) {
        if (arcs.length === 0) arcs.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
        else arcs.push(v);
        v = 0;
      } else if (i === b.length - 1) {
        this.fail('DER: OBJECT IDENTIFIER ends mid-arc');
      }
    }
    return arcs.join('.');
  }

  /** A non-negative INTEGER or ENUMERATED that fits in a safe JS number. */
  smallInt(t: Tlv): number {
    if (t.tag !== TAG.INTEGER && t.tag !== TAG.ENUMERATED) this.fail('DER: expected an INTEGER');
    const b = this.bytes(t);
    if (b.length === 0 || b.length > 6 || (b[0]! & 0x80) !== 0) this.fail('DER: INTEGER out of range');
    let v = 0;
    for (const byte of b) v = v * 256 + byte;
    return v;
  }

  /** An INTEGER's magnitude as lowercase hex without leading zero bytes (serial numbers). */
  intHex(t: Tlv): string {
    if (t.tag !== TAG.INTEGER) this.fail('DER: expected an INTEGER');
    const b = this.bytes(t);
    if (b.length === 0 || b.length > 64) this.fail('DER: bad INTEGER length');
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    return b.subarray(i).toString('hex');
  }

  time(t: Tlv): Date {
    const s = this.bytes(t).toString('latin1');
    let m: RegExpExecArray | null = null;
    if (t.tag === TAG.UTC_TIME) m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
    else if (t.tag === TAG.GENERALIZED_TIME) m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
    if (!m) this.fail('DER: bad time');
    let year = Number(m[1]);
    if (t.tag === TAG.UTC_TIME) year += year < 50 ? 2000 : 1900;
    const ms = Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
    if (!Number.isFinite(ms)) this.fail('DER: bad time');
    return new Date(ms);
  }
}
