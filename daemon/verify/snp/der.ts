/**
 * A small, bounded DER reader for the AMD certificates (ARK, ASK/ASVK, VCEK/VLEK). Only
 * what X.509 needs: single-byte tags, definite lengths in minimal form, no indefinite
 * forms. Every length is checked against its enclosing element before anything is read,
 * and every list has a count limit: certificate bytes come from outside and are hostile
 * until their signature checks out (and their extensions are parsed before that, to know
 * which checks apply).
 */
import { AttestdError, type ErrorCode } from '../../errors.js';

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Context-specific constructed tag [n], as in `[0] EXPLICIT`. */
export const ctx = (n: number): number => 0xa0 | n;

export interface DerNode {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the content. */
  end: number;
}

const MAX_CHILDREN = 256;
const MAX_OID_BYTES = 64;

export class Der {
  constructor(
    readonly bytes: Uint8Array,
    /** The code every decoding failure carries, so callers need no translation layer. */
    readonly code: ErrorCode,
  ) {}

  fail(why: string): never {
    throw new AttestdError(this.code, `malformed DER: ${why}`);
  }

  /** One TLV at `offset`, which must end at or before `limit`. */
  read(offset: number, limit: number): DerNode {
    const b = this.bytes;
    if (limit > b.length || offset + 2 > limit) this.fail('truncated element');
    const tag = b[offset] as number;
    if ((tag & 0x1f) === 0x1f) this.fail('multi-byte tags are not used in X.509');
    const first = b[offset + 1] as number;
    let length: number;
    let header = 2;
    if (first < 0x80) {
      length = first;
    } else {
      const n = first & 0x7f;
      if (n === 0) this.fail('indefinite length');
      if (n > 4) this.fail('length too large');
      if (offset + 2 + n > limit) this.fail('truncated length');
      length = 0;
      for (let i = 0; i < n; i++) length = length * 256 + (b[offset + 2 + i] as number);
      if ((b[offset + 2] as number) === 0 || length < 0x80) this.fail('non-minimal length');
      header += n;
    }
    const contentStart = offset + header;
    if (length > limit - contentStart) this.fail('element longer than its container');
    return { tag, start: offset, contentStart, end: contentStart + length };
  }

  /** The single element that spans exactly the whole input. */
  root(): DerNode {
    const node = this.read(0, this.bytes.length);
    if (node.end !== this.bytes.length) this.fail('trailing bytes');
    return node;
  }

  expect(node: DerNode, tag: number, what: string): DerNode {
    if (node.tag !== tag) this.fail(`${what}: expected tag 0x${tag.toString(16)}, got 0x${node.tag.toString(16)}`);
    return node;
  }

  children(node: DerNode, max = MAX_CHILDREN): DerNode[] {
    if ((node.tag & 0x20) === 0) this.fail('primitive element has no children');
    const out: DerNode[] = [];
    let at = node.contentStart;
    while (at < node.end) {
      if (out.length >= max) this.fail('too many elements');
      const child = this.read(at, node.end);
      out.push(child);
      at = child.end;
    }
    return out;
  }

  content(node: DerNode): Uint8Array {
    return this.bytes.subarray(node.contentStart, node.end);
  }

  raw(node: DerNode): Uint8Array {
    return this.bytes.subarray(node.start, node.end);
  }

  oid(node: DerNode): string {
    this.expect(node, TAG.OID, 'object identifier');
    const c = this.content(node);
    if (c.length === 0 || c.length > MAX_OID_BYTES) this.fail('object identifier length');
    const arcs: number[] = [];
    let value = 0;
    for (let i = 0; i < c.length; i++) {
      const byte = c[i] as number;
      if (value === 0 && byte === 0x80) this.fail('non-minimal object identifier arc');
      value = value * 128 + (byte & 0x7f);
      if (value > Number.MAX_SAFE_INTEGER / 128) this.fail('object identifier arc too large');
      if ((byte & 0x80) === 0) {
        if (arcs.length === 0) {
          const top = value < 40 ? 0 : value < 80 ? 1 : 2;
          arcs.push(top, value - top * 40);
        } else {
          arcs.push(value);
        }
        value = 0;
      } else if (i === c.length - 1) {
        this.fail('object identifier ends mid-arc');
      }
    }
    return arcs.join('.');
  }

  /** A non-negative INTEGER that fits in 32 bits (versions, SPLs, salt lengths). */
  smallUint(node: DerNode): number {
    this.expect(node, TAG.INTEGER, 'integer');
    const c = this.content(node);
    if (c.length === 0 || c.length > 5) this.fail('integer length');
    if (((c[0] as number) & 0x80) !== 0) this.fail('negative integer');
    if (c.length > 1 && c[0] === 0 && ((c[1] as number) & 0x80) === 0) this.fail('non-minimal integer');
    let v = 0;
    for (const byte of c) v = v * 256 + byte;
    if (v > 0xffffffff) this.fail('integer too large');
    return v;
  }

  boolean(node: DerNode): boolean {
    this.expect(node, TAG.BOOLEAN, 'boolean');
    const c = this.content(node);
    if (c.length !== 1 || (c[0] !== 0 && c[0] !== 0xff)) this.fail('boolean encoding');
    return c[0] === 0xff;
  }

  /** BIT STRING content without its unused-bits byte; only whole-byte strings are accepted. */
  bitStringBytes(node: DerNode): Uint8Array {
    this.expect(node, TAG.BIT_STRING, 'bit string');
    const c = this.content(node);
    if (c.length === 0) this.fail('empty bit string');
    return c.subarray(1);
  }

  /** The string of an IA5String, PrintableString or UTF8String. */
  text(node: DerNode): string {
    if (node.tag !== TAG.IA5_STRING && node.tag !== TAG.PRINTABLE_STRING && node.tag !== TAG.UTF8_STRING) {
      this.fail('expected a string');
    }
    return Buffer.from(this.content(node)).toString(node.tag === TAG.UTF8_STRING ? 'utf8' : 'latin1');
  }

  /** UTCTime or GeneralizedTime, in the only form RFC 5280 allows (seconds, trailing Z). */
  time(node: DerNode): Date {
    const s = Buffer.from(this.content(node)).toString('latin1');
    let year: number;
    let rest: string;
    if (node.tag === TAG.UTC_TIME && s.length === 13) {
      const yy = Number(s.slice(0, 2));
      year = yy >= 50 ? 1900 + yy : 2000 + yy;
      rest = s.slice(2);
    } else if (node.tag === TAG.GENERALIZED_TIME && s.length === 15) {
      year = Number(s.slice(0, 4));
      rest = s.slice(4);
    } else {
      this.fail('time encoding');
    }
    // Date.UTC maps years below 100 into the 1900s; no X.509 time predates 1950 anyway.
    if (!/^[0-9]{10}Z$/.test(rest) || !Number.isInteger(year) || year < 1950) this.fail('time encoding');
    const [mo, d, h, mi, se] = [0, 2, 4, 6, 8].map((i) => Number(rest.slice(i, i + 2))) as [number, number, number, number, number];
    const t = Date.UTC(year, mo - 1, d, h, mi, se);
    const back = new Date(t);
    if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) this.fail('time out of range');
    return back;
  }
}
