/**
 * A bounded DER reader for the NVIDIA certificates: X.509 and the DICE FWID extension.
 * Attacker-controlled bytes: only single-byte tags and definite lengths of at most four
 * bytes; each length is checked against its container before use; child lists are capped.
 * Every failure is an AttestdError with the code the caller chose.
 */
import { AttestdError, type ErrorCode } from '../../errors.js';

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

const MAX_CHILDREN = 256;

export interface Node {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  content: number;
  /** Offset just past the element. */
  end: number;
}

export class Der {
  constructor(readonly buf: Buffer, private readonly code: ErrorCode) {}

  fail(message: string): never {
    throw new AttestdError(this.code, message);
  }

  /** The element at `pos`, which must end by `limit`. */
  read(pos: number, limit: number = this.buf.length): Node {
    if (pos + 2 > limit) this.fail(`DER element at ${pos} is truncated`);
    const tag = this.buf[pos] ?? 0;
    if ((tag & 0x1f) === 0x1f) this.fail(`DER element at ${pos} has a multi-byte tag`);
    let len = this.buf[pos + 1] ?? 0;
    let content = pos + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4) this.fail(`DER element at ${pos} has an unsupported length form`);
      if (content + n > limit) this.fail(`DER length at ${pos} is truncated`);
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + (this.buf[content + i] ?? 0);
      content += n;
    }
    if (len > limit - content) this.fail(`DER element at ${pos} overruns its container`);
    return { tag, start: pos, content, end: content + len };
  }

  expect(node: Node | undefined, tag: number, what: string): Node {
    if (!node) this.fail(`${what} is missing`);
    if (node.tag !== tag) this.fail(`${what} has tag 0x${node.tag.toString(16)}, expected 0x${tag.toString(16)}`);
    return node;
  }

  children(parent: Node): Node[] {
    const out: Node[] = [];
    for (let pos = parent.content; pos < parent.end;) {
      if (out.length >= MAX_CHILDREN) this.fail('DER structure has too many elements');
      const child = this.read(pos, parent.end);
      out.push(child);
      pos = child.end;
    }
    return out;
  }

  /** Content bytes. */
  bytes(node: Node): Buffer {
    return this.buf.subarray(node.content, node.end);
  }

  /** The whole element, tag and length included. */
  raw(node: Node): Buffer {
    return this.buf.subarray(node.start, node.end);
  }

  oid(node: Node): string {
    if (node.tag !== TAG.OID) this.fail('expected an OBJECT IDENTIFIER');
    const b = this.bytes(node);
    if (b.length === 0 || b.length > 64) this.fail('OBJECT IDENTIFIER has a bad length');
    const arcs: number[] = [];
    let v = 0;
    for (let i = 0; i < b.length; i++) {
      const byte = b[i] ?? 0;
      if (v > 0xffff_ffff) this.fail('OBJECT IDENTIFIER arc is too large');
      v = v * 128 + (byte & 0x7f);
      if (byte & 0x80) {
        if (i === b.length - 1) this.fail('OBJECT IDENTIFIER ends inside an arc');
        continue;
      }
      if (arcs.length === 0) arcs.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else arcs.push(v);
      v = 0;
    }
    return arcs.join('.');
  }

  /** A non-negative INTEGER small enough for a JS number (path lengths, versions). */
  smallInt(node: Node): number {
    if (node.tag !== TAG.INTEGER) this.fail('expected an INTEGER');
    const b = this.bytes(node);
    if (b.length === 0 || b.length > 4 || ((b[0] ?? 0) & 0x80) !== 0) this.fail('INTEGER is out of range');
    let v = 0;
    for (const byte of b) v = v * 256 + byte;
    return v;
  }

  boolean(node: Node): boolean {
    if (node.tag !== TAG.BOOLEAN || node.end - node.content !== 1) this.fail('expected a BOOLEAN');
    return (this.buf[node.content] ?? 0) !== 0;
  }

  /** A BIT STRING's bytes, without the unused-bits count; `whole` requires that count be 0. */
  bitString(node: Node, whole = false): Buffer {
    if (node.tag !== TAG.BIT_STRING || node.end === node.content) this.fail('expected a BIT STRING');
    const unused = this.buf[node.content] ?? 0;
    if (unused > 7 || (whole && unused !== 0)) this.fail('BIT STRING has a bad unused-bits count');
    return this.buf.subarray(node.content + 1, node.end);
  }

  time(node: Node): Date {
    const text = this.bytes(node).toString('latin1');
    let iso: string | undefined;
    if (node.tag === TAG.UTC_TIME && /^\d{12}Z$/.test(text)) {
      const yy = Number(text.slice(0, 2));
      iso = `${yy >= 50 ? 19 : 20}${text.slice(0, 2)}`;
      iso += `-${text.slice(2, 4)}-${text.slice(4, 6)}T${text.slice(6, 8)}:${text.slice(8, 10)}:${text.slice(10, 12)}Z`;
    } else if (node.tag === TAG.GENERALIZED_TIME && /^\d{14}Z$/.test(text)) {
      iso = `${text.slice(0, 4)}-${text.slice(4, 6)}-${text.slice(6, 8)}T${text.slice(8, 10)}:${text.slice(10, 12)}:${text.slice(12, 14)}Z`;
    }
    const date = iso === undefined ? undefined : new Date(iso);
    if (!date || Number.isNaN(date.getTime())) this.fail(`time "${text.slice(0, 20)}" is not a valid UTCTime or GeneralizedTime`);
    return date;
  }
}
