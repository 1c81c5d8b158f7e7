/**
 * The boundary to the ASN.1 library: asn1js decodes the bytes, @peculiar/asn1-schema maps
 * them onto the X.509 schemas of @peculiar/asn1-x509. Every byte given here is hostile until a
 * signature over it has verified, and some (extensions, names) are read before that to learn
 * which checks apply, so the library's leniency is taken back here:
 *  - one element spans the whole input, nothing before or after it;
 *  - a schema decode must, by default, re-encode to exactly the input: no BER, no field the
 *    schema does not have, no DEFAULT value spelled out, no second encoding of a value (TPM
 *    vendor certificates, some of which are not DER, may be read as OpenSSL reads them);
 *  - a decode without a schema obeys DER's rules element by element: definite lengths in
 *    minimal form, single-byte tags, primitive types primitive, BOOLEAN 0x00 or 0xff;
 *  - whatever the library throws (including a stack overflow on deep nesting) becomes an
 *    AttestdError with the caller's code, so a malformed AMD certificate is
 *    SNP_CERT_CHAIN_INVALID and a malformed Intel CRL TDX_COLLATERAL_INVALID.
 * The small readers below (children, oid, smallUint, text) take the decoded elements and
 * check what the schema-less structures of vendor extensions need: counts, tags, ranges.
 */
import type * as Asn1js from 'asn1js';
import type * as AsnSchema from '@peculiar/asn1-schema';
import type * as AsnX509 from '@peculiar/asn1-x509';
import { AttestdError, type ErrorCode } from '../../base/errors.js';
import { lazyRequire } from '../../base/lazy-require.js';

/**
 * The libraries, loaded on first use: a daemon that never sees a certificate (no GPU, no
 * confidential VM, no EK CA folder) neither waits for them at start nor keeps them resident.
 */
export const asn1js = lazyRequire<typeof Asn1js>('asn1js');
const asnSchema = lazyRequire<typeof AsnSchema>('@peculiar/asn1-schema');
/** The X.509 schemas (Certificate, CertificateList, Name, the standard extensions). */
export const x509Schemas = lazyRequire<typeof AsnX509>('@peculiar/asn1-x509');

/** Identifier octets of the universal types these structures use. */
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

/** The parts of an asn1js element read here. */
export interface Asn1Node {
  idBlock: { tagClass: number; tagNumber: number; isConstructed: boolean; blockLength: number };
  lenBlock: { isIndefiniteForm: boolean; length: number; blockLength: number };
  valueBeforeDecodeView: Uint8Array;
  valueBlock: { value?: unknown };
}

/** X.509 nests about ten deep; vendor extensions a few more. */
const MAX_DEPTH = 24;
/** Names, extension lists and the like; a list that may really be longer (CRL entries) passes its own. */
const MAX_CHILDREN = 256;
const MAX_OID_BYTES = 64;
/** Versions, SVNs, salt and path lengths: four content bytes keep every value below 2^31. */
const MAX_SMALL_UINT_BYTES = 4;
/** Universal types DER encodes primitive: BOOLEAN..OID, ENUMERATED, the strings and times. */
const PRIMITIVE_ONLY = new Set([1, 2, 3, 4, 5, 6, 10, 12, 18, 19, 20, 22, 23, 24, 26, 28, 30]);
const CLASS_BITS = [0, 0x00, 0x40, 0x80, 0xc0];

type Schema<T> = new () => T;

function bytesOf(view: Uint8Array): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

function libraryMessage(err: unknown): string {
  if (err instanceof RangeError) return 'it nests too deeply';
  return err instanceof Error ? err.message.slice(0, 160) : String(err).slice(0, 160);
}

/** Reads one kind of structure and fails with one error code. */
export class Asn1Reader {
  constructor(
    /** The code every decoding failure carries. */
    readonly code: ErrorCode,
  ) {}

  fail(why: string, cause?: unknown): never {
    throw new AttestdError(this.code, why, cause === undefined ? undefined : { cause });
  }

  /** The library's tree of `bytes`, which must be exactly one element; nothing else is checked. */
  private tree(bytes: Uint8Array, what: string): Asn1Node {
    if (bytes.length === 0) this.fail(`${what} is empty`);
    let decoded: ReturnType<typeof Asn1js.fromBER>;
    try {
      decoded = asn1js().fromBER(bytes);
    } catch (err) {
      this.fail(`${what} does not decode: ${libraryMessage(err)}`, err);
    }
    const node = decoded.result as unknown as Asn1Node & { error?: string };
    if (decoded.offset === -1) this.fail(`${what} does not decode: ${node.error || 'malformed'}`);
    if (decoded.offset !== bytes.length) this.fail(`${what} has trailing bytes`);
    this.checkHeader(node, what);
    return node;
  }

  /** Tag and length in the one form DER allows. */
  private checkHeader(node: Asn1Node, what: string): void {
    const { idBlock, lenBlock } = node;
    if (idBlock.blockLength !== 1) this.fail(`${what} has a multi-byte tag, which X.509 never uses`);
    if (lenBlock.isIndefiniteForm) this.fail(`${what} has an indefinite length`);
    const n = lenBlock.length;
    const minimal = n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x1000000 ? 4 : 5;
    // A second encoding of the same length would be a second encoding of signed bytes.
    if (lenBlock.blockLength !== minimal) this.fail(`${what} has a length not in minimal form`);
  }

  /** One element obeying DER's rules throughout, for structures read without a schema. */
  decode(bytes: Uint8Array, what: string): Asn1Node {
    const node = this.tree(bytes, what);
    this.checkDer(node, what, 0);
    return node;
  }

  /**
   * `bytes` decoded with `schema`. How strictly the bytes must be DER:
   *  - "canonical" (the default): the value re-encodes to exactly the input;
   *  - "der": DER's rules element by element, but a field the schema does not read, or a
   *    DEFAULT value spelled out, passes (for extensions issuers encode loosely);
   *  - "ber": only the outer element is checked, as OpenSSL reads certificates.
   * Returns the value and the element tree it came from.
   */
  schema<T extends object>(bytes: Uint8Array, schema: Schema<T>, what: string, strictness: 'canonical' | 'der' | 'ber' = 'canonical'): { value: T; node: Asn1Node } {
    const node = strictness === 'der' ? this.decode(bytes, what) : this.tree(bytes, what);
    let value: T;
    try {
      value = asnSchema().AsnParser.fromASN(node as unknown as Asn1js.AsnType, schema) as T;
    } catch (err) {
      this.fail(`${what} is malformed: ${libraryMessage(err)}`, err);
    }
    if (strictness === 'canonical' && !this.reencodes(value, bytes)) {
      this.fail(`${what} is not in DER form, or holds fields its structure does not have`);
    }
    return { value, node };
  }

  /** Whether `value` re-encodes to exactly `bytes`: they are its one DER encoding. */
  reencodes(value: object, bytes: Uint8Array): boolean {
    try {
      return Buffer.from(asnSchema().AsnConvert.serialize(value)).equals(bytes);
    } catch {
      return false;
    }
  }

  /** DER's rules on every element the library decoded, down to primitive values. */
  private checkDer(node: Asn1Node, what: string, depth: number): void {
    if (depth > MAX_DEPTH) this.fail(`${what} nests too deeply`);
    this.checkHeader(node, what);
    const { idBlock } = node;
    const n = node.lenBlock.length;
    if (idBlock.tagClass === 1) {
      if (PRIMITIVE_ONLY.has(idBlock.tagNumber) && idBlock.isConstructed) this.fail(`${what} has a constructed string`);
      if ((idBlock.tagNumber === 16 || idBlock.tagNumber === 17) && !idBlock.isConstructed) this.fail(`${what} has a primitive SEQUENCE`);
      if (idBlock.tagNumber === 1) {
        const c = this.content(node);
        if (c.length !== 1 || (c[0] !== 0 && c[0] !== 0xff)) this.fail(`${what}: BOOLEAN is not 0x00 or 0xff`);
      }
      if (idBlock.tagNumber === 5 && n !== 0) this.fail(`${what}: NULL has content`);
    }
    if (idBlock.isConstructed) for (const child of this.rawChildren(node)) this.checkDer(child, what, depth + 1);
  }

  private rawChildren(node: Asn1Node): Asn1Node[] {
    const value = node.valueBlock.value;
    return Array.isArray(value) ? (value as Asn1Node[]) : [];
  }

  /** The identifier octet: class, constructed bit and (single-byte) tag number. */
  tagOf(node: Asn1Node): number {
    const { tagClass, tagNumber, isConstructed } = node.idBlock;
    return (CLASS_BITS[tagClass] ?? 0) | (isConstructed ? 0x20 : 0) | (tagNumber & 0x1f);
  }

  /** `node`, provided it is there and has `tag`; destructured lists leave gaps as undefined. */
  expect(node: Asn1Node | undefined, tag: number, what: string): Asn1Node {
    if (!node) this.fail(`${what} is missing`);
    const got = this.tagOf(node);
    if (got !== tag) this.fail(`${what} has tag 0x${got.toString(16)}, expected 0x${tag.toString(16)}`);
    return node;
  }

  children(node: Asn1Node, what: string, max = MAX_CHILDREN): Asn1Node[] {
    if (!node.idBlock.isConstructed) this.fail(`${what} is primitive and has no elements`);
    const out = this.rawChildren(node);
    if (out.length > max) this.fail(`${what} has more than ${max} elements`);
    return out;
  }

  /** The whole element, tag and length included: what a signature covers, what names compare as. */
  raw(node: Asn1Node): Buffer {
    return bytesOf(node.valueBeforeDecodeView);
  }

  content(node: Asn1Node): Buffer {
    return this.raw(node).subarray(node.idBlock.blockLength + node.lenBlock.blockLength);
  }

  oid(node: Asn1Node, what = 'object identifier'): string {
    this.expect(node, TAG.OID, what);
    const c = this.content(node);
    if (c.length === 0 || c.length > MAX_OID_BYTES) this.fail(`${what} has a bad length`);
    // A leading 0x80 pads an arc, and the last byte must end one: one OID, one encoding.
    for (let i = 0; i < c.length; i++) {
      if (c[i] === 0x80 && (i === 0 || ((c[i - 1] as number) & 0x80) === 0)) this.fail(`${what} has a non-minimal arc`);
    }
    if (((c[c.length - 1] as number) & 0x80) !== 0) this.fail(`${what} ends inside an arc`);
    const value = (node as unknown as Asn1js.ObjectIdentifier).getValue();
    if (typeof value !== 'string' || !/^[0-9]+(\.[0-9]+)+$/.test(value)) this.fail(`${what} does not decode`);
    return value;
  }

  /**
   * A small non-negative INTEGER in minimal form (versions, SPLs, SVNs, salt and path
   * lengths). `tag` lets a field the spec declares ENUMERATED (Intel's SGX type) be read the
   * same way without every INTEGER also accepting ENUMERATED.
   */
  smallUint(node: Asn1Node, tag: number = TAG.INTEGER, what = 'integer'): number {
    this.expect(node, tag, what);
    const c = this.content(node);
    if (c.length === 0 || c.length > MAX_SMALL_UINT_BYTES) this.fail(`${what} is out of range`);
    if (((c[0] as number) & 0x80) !== 0) this.fail(`${what} is negative`);
    if (c.length > 1 && c[0] === 0 && ((c[1] as number) & 0x80) === 0) this.fail(`${what} is not in minimal form`);
    return c.readUIntBE(0, c.length);
  }

  /** DER allows exactly 0x00 and 0xff, which decode() has already checked. */
  boolean(node: Asn1Node, what = 'boolean'): boolean {
    this.expect(node, TAG.BOOLEAN, what);
    return this.content(node)[0] === 0xff;
  }

  /**
   * UTCTime or GeneralizedTime in the only form RFC 5280 allows (seconds, trailing Z), read
   * from the bytes rather than from the library's Date, which forgives other forms.
   */
  time(node: Asn1Node, what = 'time'): Date {
    const tag = this.tagOf(node);
    const s = this.content(node).toString('latin1');
    const bad = (): never => this.fail(`${what} "${s.slice(0, 20)}" is not a valid UTCTime or GeneralizedTime`);
    // Digits throughout: Number() would otherwise read a year such as "2e03" as 2000.
    if (!/^[0-9]{12,14}Z$/.test(s)) bad();
    let year: number;
    let rest: string;
    if (tag === TAG.UTC_TIME && s.length === 13) {
      const yy = Number(s.slice(0, 2));
      year = yy >= 50 ? 1900 + yy : 2000 + yy;
      rest = s.slice(2);
    } else if (tag === TAG.GENERALIZED_TIME && s.length === 15) {
      year = Number(s.slice(0, 4));
      rest = s.slice(4);
    } else {
      return bad();
    }
    // Date.UTC maps years below 100 into the 1900s; no X.509 time predates 1950 anyway.
    if (year < 1950) this.fail(`${what} "${s}" is before 1950`);
    const [mo, d, h, mi, se] = [0, 2, 4, 6, 8].map((i) => Number(rest.slice(i, i + 2))) as [number, number, number, number, number];
    const back = new Date(Date.UTC(year, mo - 1, d, h, mi, se));
    // Date.UTC rolls 31 February into March; reading the fields back catches that.
    if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) this.fail(`${what} "${s}" is out of range`);
    return back;
  }

  /** The string of an IA5String, PrintableString or UTF8String. */
  text(node: Asn1Node, what = 'string'): string {
    const tag = this.tagOf(node);
    if (tag !== TAG.IA5_STRING && tag !== TAG.PRINTABLE_STRING && tag !== TAG.UTF8_STRING) this.fail(`${what} is not a string`);
    return this.content(node).toString(tag === TAG.UTF8_STRING ? 'utf8' : 'latin1');
  }
}
