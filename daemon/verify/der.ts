/**
 * The one bounded DER reader behind every X.509 structure attestd reads: the AMD, Intel and
 * NVIDIA certificate chains, Intel's CRLs and SGX extension, NVIDIA's DICE extension, and TPM
 * EK certificates. These bytes are hostile until a signature over them has verified, and some
 * (extensions, names) are read before that to learn which checks apply. So only what DER
 * allows for these structures is accepted: single-byte tags, definite lengths in minimal form
 * of at most four length bytes. Every length is checked against its enclosing element before
 * anything is read, and every list has a count limit.
 *
 * Each reader carries the error code its failures throw, so a malformed AMD certificate is
 * SNP_CERT_CHAIN_INVALID and a malformed Intel CRL TDX_COLLATERAL_INVALID without each
 * caller translating errors.
 */
import { AttestdError, type ErrorCode } from '../base/errors.js';

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
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

/** Names, extension lists and the like; a list that may really be longer (CRL entries) passes its own. */
const MAX_CHILDREN = 256;
const MAX_OID_BYTES = 64;
/** Arcs of the OIDs in these certificates are small; the cap keeps arithmetic exact. */
const MAX_OID_ARC_PREFIX = 0xffff_ffff;
/** Serial numbers: RFC 5280 allows 20 octets; the slack tolerates issuers that overshoot. */
const MAX_INT_HEX_BYTES = 64;
/** Versions, SVNs, salt and path lengths: four content bytes keep every value below 2^31. */
const MAX_SMALL_UINT_BYTES = 4;


/**
 * `B` is the type of the input and of every slice handed back: a reader over a Buffer returns
 * Buffers (whose `subarray` is itself a Buffer), one over a plain Uint8Array returns plain
 * Uint8Arrays, so callers keep the types they had.
 */
export class Der<B extends Uint8Array = Uint8Array> {
  constructor(
    readonly bytes: B,
    /** The code every decoding failure carries. */
    readonly code: ErrorCode,
  ) {}

  fail(why: string): never {
    throw new AttestdError(this.code, why);
  }

  /** One TLV at `offset`, which must end at or before `limit`. */
  read(offset: number, limit: number = this.bytes.length): DerNode {
    const b = this.bytes;
    if (limit > b.length || offset + 2 > limit) this.fail(`DER element at ${offset} is truncated`);
    const tag = b[offset] as number;
    if ((tag & 0x1f) === 0x1f) this.fail(`DER element at ${offset} has a multi-byte tag, which X.509 never uses`);
    const first = b[offset + 1] as number;
    let length = first;
    let header = 2;
    if (first >= 0x80) {
      const n = first & 0x7f;
      if (n === 0) this.fail(`DER element at ${offset} has an indefinite length`);
      if (n > 4) this.fail(`DER element at ${offset} has a length too large`);
      if (offset + 2 + n > limit) this.fail(`DER length at ${offset} is truncated`);
      length = 0;
      for (let i = 0; i < n; i++) length = length * 256 + (b[offset + 2 + i] as number);
      // A second encoding of the same length would be a second encoding of signed bytes.
      const minimal = (b[offset + 2] as number) !== 0 && length >= 0x80;
      if (!minimal) this.fail(`DER element at ${offset} has a non-minimal length`);
      header += n;
    }
    const contentStart = offset + header;
    if (length > limit - contentStart) this.fail(`DER element at ${offset} overruns its container`);
    return { tag, start: offset, contentStart, end: contentStart + length };
  }

  /** The single element that spans exactly the whole input. */
  root(): DerNode {
    const node = this.read(0);
    if (node.end !== this.bytes.length) this.fail('DER input has trailing bytes');
    return node;
  }

  /** `node`, provided it is there and has `tag`; destructured lists leave gaps as undefined. */
  expect(node: DerNode | undefined, tag: number, what: string): DerNode {
    if (!node) this.fail(`${what} is missing`);
    if (node.tag !== tag) this.fail(`${what} has tag 0x${node.tag.toString(16)}, expected 0x${tag.toString(16)}`);
    return node;
  }

  children(node: DerNode, max = MAX_CHILDREN): DerNode[] {
    if ((node.tag & 0x20) === 0) this.fail('a primitive DER element has no children');
    const out: DerNode[] = [];
    for (let at = node.contentStart; at < node.end;) {
      if (out.length >= max) this.fail('DER structure has too many elements');
      const child = this.read(at, node.end);
      out.push(child);
      at = child.end;
    }
    return out;
  }

  content(node: DerNode): B {
    return this.bytes.subarray(node.contentStart, node.end) as B;
  }

  /** The whole element, tag and length included: what a signature covers, what names compare as. */
  raw(node: DerNode): B {
    return this.bytes.subarray(node.start, node.end) as B;
  }

  oid(node: DerNode): string {
    this.expect(node, TAG.OID, 'object identifier');
    const c = this.content(node);
    if (c.length === 0 || c.length > MAX_OID_BYTES) this.fail('object identifier has a bad length');
    const arcs: number[] = [];
    let value = 0;
    for (let i = 0; i < c.length; i++) {
      const byte = c[i] as number;
      // A leading 0x80 pads an arc: the same OID would have two encodings.
      if (value === 0 && byte === 0x80) this.fail('object identifier has a non-minimal arc');
      if (value > MAX_OID_ARC_PREFIX) this.fail('object identifier arc is too large');
      value = value * 128 + (byte & 0x7f);
      if ((byte & 0x80) === 0) {
        if (arcs.length === 0) {
          const top = value < 40 ? 0 : value < 80 ? 1 : 2;
          arcs.push(top, value - top * 40);
        } else {
          arcs.push(value);
        }
        value = 0;
      } else if (i === c.length - 1) {
        this.fail('object identifier ends inside an arc');
      }
    }
    return arcs.join('.');
  }

  /**
   * A small non-negative INTEGER in minimal form (versions, SPLs, SVNs, salt and path
   * lengths). `tag` lets a field the spec declares ENUMERATED (Intel's SGX type) be read the
   * same way without every INTEGER also accepting ENUMERATED.
   */
  smallUint(node: DerNode, tag: number = TAG.INTEGER): number {
    this.expect(node, tag, 'integer');
    const c = this.content(node);
    if (c.length === 0 || c.length > MAX_SMALL_UINT_BYTES) this.fail('INTEGER is out of range');
    if (((c[0] as number) & 0x80) !== 0) this.fail('INTEGER is negative');
    if (c.length > 1 && c[0] === 0 && ((c[1] as number) & 0x80) === 0) this.fail('INTEGER is not in minimal form');
    let v = 0;
    for (const byte of c) v = v * 256 + byte;
    return v;
  }

  /**
   * An INTEGER's magnitude as lowercase hex without leading zero bytes: serial numbers, which
   * CAs do not always encode minimally, compared between certificates and CRLs.
   */
  intHex(node: DerNode): string {
    this.expect(node, TAG.INTEGER, 'integer');
    const c = this.content(node);
    if (c.length === 0 || c.length > MAX_INT_HEX_BYTES) this.fail('INTEGER has a bad length');
    let i = 0;
    while (i < c.length - 1 && c[i] === 0) i++;
    return Buffer.from(c.subarray(i)).toString('hex');
  }

  /** DER allows exactly 0x00 and 0xff. */
  boolean(node: DerNode): boolean {
    this.expect(node, TAG.BOOLEAN, 'boolean');
    const c = this.content(node);
    if (c.length !== 1 || (c[0] !== 0 && c[0] !== 0xff)) this.fail('BOOLEAN is not 0x00 or 0xff');
    return c[0] === 0xff;
  }

  /**
   * A BIT STRING's bytes without the unused-bits count. `whole` requires that count to be 0,
   * as for signatures, where unused bits would be a second encoding of the same value.
   */
  bitString(node: DerNode, whole = false): B {
    this.expect(node, TAG.BIT_STRING, 'bit string');
    if (node.end === node.contentStart) this.fail('BIT STRING is empty');
    const unused = this.bytes[node.contentStart] as number;
    if (unused > 7 || (whole && unused !== 0)) this.fail('BIT STRING has a bad unused-bits count');
    return this.bytes.subarray(node.contentStart + 1, node.end) as B;
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
    // Digits throughout: Number() would otherwise read a year such as "2e03" as 2000.
    if (!/^[0-9]{12,14}Z$/.test(s)) this.fail(`time "${s.slice(0, 20)}" is not a valid UTCTime or GeneralizedTime`);
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
      this.fail(`time "${s.slice(0, 20)}" is not a valid UTCTime or GeneralizedTime`);
    }
    // Date.UTC maps years below 100 into the 1900s; no X.509 time predates 1950 anyway.
    if (year < 1950) this.fail(`time "${s}" is before 1950`);
    const [mo, d, h, mi, se] = [0, 2, 4, 6, 8].map((i) => Number(rest.slice(i, i + 2))) as [number, number, number, number, number];
    const back = new Date(Date.UTC(year, mo - 1, d, h, mi, se));
    // Date.UTC rolls 31 February into March; reading the fields back catches that.
    if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) this.fail(`time "${s}" is out of range`);
    return back;
  }
}
