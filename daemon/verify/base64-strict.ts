/**
 * Canonical standard base64 (RFC 4648 section 4, with padding). Node's decoder skips
 * characters it does not know and ignores non-zero padding bits, so two different strings
 * could name the same bytes; signed formats need exactly one spelling per value.
 */

const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;

/** The decoded bytes, or undefined unless `text` is the canonical encoding of them. */
export function decodeBase64Strict(text: string, maxBytes: number): Buffer | undefined {
  if (text.length % 4 !== 0 || text.length > Math.ceil(maxBytes / 3) * 4) return undefined;
  if (!BASE64_CHARS.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}
