/**
 * Distinguished names. The AMD, Intel and NVIDIA chains compare issuer and subject byte for
 * byte (their CAs encode both identically, and byte equality leaves no room for look-alikes).
 * TPM vendor CAs are less tidy, so EK chains compare names the way OpenSSL's X509_NAME_cmp
 * does, which is what they were checked with before: each string attribute in UTF-8, ASCII
 * letters lower-cased, leading and trailing white space dropped and inner runs of it made one
 * space, the attributes of a multi-valued RDN in any order.
 */
import type { AttributeValue, Name } from '@peculiar/asn1-x509';
import { asn1js } from './asn1.js';

export const OID_COMMON_NAME = '2.5.4.3';

const VISIBLE_STRING = 0x1a;

/** Text of the string forms of an attribute value; undefined for any other type. */
export function attributeText(value: AttributeValue): string | undefined {
  const text = value.utf8String ?? value.printableString ?? value.ia5String ?? value.teletexString ?? value.bmpString ?? value.universalString;
  if (text !== undefined || value.anyValue === undefined) return text;
  // The schema leaves VisibleString undecoded; OpenSSL treats it as a string too.
  const raw = new Uint8Array(value.anyValue);
  if (raw[0] !== VISIBLE_STRING) return undefined;
  const lib = asn1js();
  const decoded = lib.fromBER(raw);
  return decoded.offset === raw.length && decoded.result instanceof lib.VisibleString ? decoded.result.valueBlock.value : undefined;
}

/** Every common name in `name`, in order, as text. */
export function commonNames(name: Name): string[] {
  const out: string[] = [];
  for (const rdn of name) {
    for (const atv of rdn) {
      if (atv.type !== OID_COMMON_NAME) continue;
      const text = attributeText(atv.value);
      if (text !== undefined) out.push(text);
    }
  }
  return out;
}

/** The white space of C's isspace(), which OpenSSL folds; no other. */
const SPACE = /[ \t\n\v\f\r]+/g;

/** OpenSSL's canonical form of a string attribute: trimmed, spaces folded, ASCII lower-cased. */
function canonicalText(text: string): string {
  return text.replace(SPACE, ' ').replace(/^ | $/g, '').replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/**
 * A key equal for two names exactly when OpenSSL's X509_NAME_cmp finds them equal. Values of
 * other than string types (NumericString, VisibleString, ...) compare as their encoding.
 */
export function nameKey(name: Name): string {
  const rdns = [...name].map((rdn) =>
    [...rdn].map((atv) => {
      const text = attributeText(atv.value);
      const value = text === undefined ? `x:${Buffer.from(atv.value.anyValue ?? new ArrayBuffer(0)).toString('hex')}` : `s:${canonicalText(text)}`;
      return `${atv.type}=${value}`;
    }).sort());
  return JSON.stringify(rdns);
}
