/**
 * IMA templates: how the template-data column of the ASCII list reads, and how the kernel
 * serialises the same fields before hashing them into the template hash (Linux
 * security/integrity/ima/ima_template_lib.c, ima_crypto.c: ima_calc_field_array_hash).
 *
 * - `ima` (legacy, fields d|n): the 20-byte SHA-1 file digest, then the name padded with
 *   NULs to IMA_EVENT_NAME_LEN_MAX + 1 = 256 bytes; no length prefixes.
 * - `ima-ng` (d-ng|n-ng): each field as a u32 little-endian length then the bytes; d-ng is
 *   "<algo>:" NUL <raw digest>, n-ng is the name with its terminating NUL.
 * - `ima-sig` (d-ng|n-ng|sig) and `ima-buf` (d-ng|n-ng|buf): one more length-prefixed field,
 *   which may be empty for ima-sig.
 *
 * In the ASCII list each field is printed after one space, so an ima-sig entry without a
 * signature ends in a space; a path may itself contain spaces.
 */
import { AttestdError } from '../../base/errors.js';
import { SPACE, decodeHex, imaMalformed, indexIn, isLowerHex, lastIndexIn, printable } from './text.js';

export type ImaTemplateName = 'ima' | 'ima-ng' | 'ima-sig' | 'ima-buf';

const TEMPLATES: ReadonlyMap<string, ImaTemplateName> = new Map([
  ['ima', 'ima'],
  ['ima-ng', 'ima-ng'],
  ['ima-sig', 'ima-sig'],
  ['ima-buf', 'ima-buf'],
]);

/** IMA_EVENT_NAME_LEN_MAX + 1: the legacy template's fixed name field. */
export const IMA_LEGACY_NAME_FIELD = 256;

/** File digest algorithms the kernel can name in a d-ng field (crypto/hash_info.c), with sizes. */
const FILE_DIGEST_SIZES: ReadonlyMap<string, number> = new Map([
  ['md4', 16],
  ['md5', 16],
  ['sha1', 20],
  ['rmd160', 20],
  ['sha224', 28],
  ['sha256', 32],
  ['sha384', 48],
  ['sha512', 64],
  ['wp256', 32],
  ['wp384', 48],
  ['wp512', 64],
  ['sm3', 32],
  ['streebog256', 32],
  ['streebog512', 64],
  ['sha3-256', 32],
  ['sha3-384', 48],
  ['sha3-512', 64],
]);

export function fileDigestSize(alg: string): number | undefined {
  return FILE_DIGEST_SIZES.get(alg);
}

export function templateNameOf(buf: Buffer, from: number, end: number, line: number): ImaTemplateName {
  const name = TEMPLATES.get(buf.toString('latin1', from, end));
  if (name === undefined) imaMalformed(line, `unsupported template "${printable(buf.subarray(from, end), 32)}"`);
  return name;
}

export interface ImaTemplateFields {
  /** File digest algorithm as the kernel names it ("sha256"); always "sha1" for `ima`. */
  digestAlg: string;
  digest: Buffer;
  /** The name field as listed (no NUL). */
  name: Buffer;
  /** ima-sig: the signature (possibly empty); ima-buf: the buffer; otherwise undefined. */
  extra?: Buffer;
}

/** Reads the template-data column buf[from, end) of one line. */
export function parseTemplateFields(
  template: ImaTemplateName,
  buf: Buffer,
  from: number,
  end: number,
  line: number,
): ImaTemplateFields {
  if (template === 'ima') return parseLegacy(buf, from, end, line);
  const colon = indexIn(buf, 0x3a, from, end);
  const space = indexIn(buf, SPACE, from, end);
  if (colon === -1 || space === -1 || colon > space) imaMalformed(line, 'template data is not "<algo>:<digest> <name>"');
  const digestAlg = buf.toString('latin1', from, colon);
  const size = fileDigestSize(digestAlg);
  if (size === undefined) imaMalformed(line, `unknown file digest algorithm "${printable(digestAlg, 32)}"`);
  if (space - colon - 1 !== size * 2) imaMalformed(line, `${digestAlg} digest must be ${size * 2} hex digits`);
  const digest = decodeHex(buf, colon + 1, space, line, 'file digest');

  let nameEnd = end;
  let extra: Buffer | undefined;
  if (template === 'ima-sig' || template === 'ima-buf') {
    const last = lastIndexIn(buf, SPACE, space + 1, end);
    if (last !== -1 && isLowerHex(buf, last + 1, end)) {
      nameEnd = last;
      extra = decodeHex(buf, last + 1, end, line, template === 'ima-sig' ? 'signature' : 'buffer');
    } else if (template === 'ima-buf') {
      imaMalformed(line, 'ima-buf entry has no hex buffer');
    } else {
      // Tolerates a list whose trailing separator was stripped: no signature.
      extra = Buffer.alloc(0);
    }
  }
  const name = checkedName(buf, space + 1, nameEnd, line);
  return extra === undefined ? { digestAlg, digest, name } : { digestAlg, digest, name, extra };
}

function parseLegacy(buf: Buffer, from: number, end: number, line: number): ImaTemplateFields {
  const space = indexIn(buf, SPACE, from, end);
  if (space === -1) imaMalformed(line, 'template data is not "<sha1 digest> <name>"');
  if (space - from !== 40) imaMalformed(line, 'ima template digest must be 40 hex digits');
  const digest = decodeHex(buf, from, space, line, 'file digest');
  const name = checkedName(buf, space + 1, end, line);
  if (name.length >= IMA_LEGACY_NAME_FIELD) {
    imaMalformed(line, `ima template name is ${name.length} bytes, at most ${IMA_LEGACY_NAME_FIELD - 1}`);
  }
  return { digestAlg: 'sha1', digest, name };
}

function checkedName(buf: Buffer, from: number, end: number, line: number): Buffer {
  if (end <= from) imaMalformed(line, 'empty file name');
  // The kernel stores names NUL-terminated, so a NUL inside one cannot have come from it.
  if (indexIn(buf, 0, from, end) !== -1) imaMalformed(line, 'file name contains a NUL byte');
  return Buffer.from(buf.subarray(from, end));
}

/** The bytes the kernel hashes into the template hash, in every bank. */
export function serialiseTemplate(template: ImaTemplateName, fields: ImaTemplateFields): Buffer {
  if (template === 'ima') {
    if (fields.digest.length !== 20 || fields.name.length >= IMA_LEGACY_NAME_FIELD) {
      throw new AttestdError('INVALID_ARGUMENT', 'ima template needs a 20-byte digest and a name under 256 bytes');
    }
    const out = Buffer.alloc(20 + IMA_LEGACY_NAME_FIELD);
    fields.digest.copy(out, 0);
    fields.name.copy(out, 20);
    return out;
  }
  const algLen = Buffer.byteLength(fields.digestAlg, 'latin1');
  const dng = algLen + 2 + fields.digest.length;
  const nng = fields.name.length + 1;
  const hasExtra = template === 'ima-sig' || template === 'ima-buf';
  const extra = hasExtra ? (fields.extra ?? Buffer.alloc(0)) : undefined;
  const out = Buffer.alloc(4 + dng + 4 + nng + (extra === undefined ? 0 : 4 + extra.length));
  let at = out.writeUInt32LE(dng, 0);
  at += out.write(fields.digestAlg, at, 'latin1');
  out[at] = 0x3a;
  at += 2; // ':' then NUL
  at += fields.digest.copy(out, at);
  at = out.writeUInt32LE(nng, at);
  at += fields.name.copy(out, at);
  at += 1; // NUL terminator
  if (extra !== undefined) {
    at = out.writeUInt32LE(extra.length, at);
    extra.copy(out, at);
  }
  return out;
}
