/**
 * XML parsing for RIMs, which come from outside (a cache, a download, an operator's file):
 * a size cap before anything is read, no DTD at all (so no entity expansion, internal or
 * external, and nothing is ever fetched), and every parser complaint is fatal. The parser,
 * @xmldom/xmldom, resolves no external resources itself; the DTD ban is the belt to that.
 */
import type { Document, Element } from '@xmldom/xmldom';
import type * as XmlDom from '@xmldom/xmldom';
import { lazyRequire } from '../../base/lazy-require.js';

const xmldom = lazyRequire<typeof XmlDom>('@xmldom/xmldom');
import { AttestdError } from '../../base/errors.js';

/** NVIDIA RIMs are about 20 KiB; anything many times that is not a RIM. */
export const MAX_RIM_BYTES = 512 * 1024;
const MAX_ELEMENTS = 4096;

function invalid(why: string, cause?: unknown): AttestdError {
  return new AttestdError('RIM_INVALID', `RIM: ${why}`, cause === undefined ? undefined : { cause });
}

/** Controls other than tab, LF and CR, and U+FFFE/U+FFFF, are not XML 1.0 characters. */
function hasNonXmlChar(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0xfffe || c === 0xffff) return true;
  }
  return false;
}

/** The RIM as text: UTF-8 without a byte-order mark, size-capped, no DOCTYPE, only XML characters. */
export function rimText(xml: string | Uint8Array): string {
  const size = typeof xml === 'string' ? Buffer.byteLength(xml, 'utf8') : xml.length;
  if (size > MAX_RIM_BYTES) throw invalid(`${size} bytes, over ${MAX_RIM_BYTES}`);
  let text = typeof xml === 'string' ? xml : Buffer.from(xml).toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw invalid('a document type declaration is not allowed');
  // XML 1.0 forbids these; the parser would pass some of them over silently.
  if (hasNonXmlChar(text)) throw invalid('a character XML does not allow');
  return text;
}

export function parseXml(text: string): Document {
  let doc: Document;
  try {
    doc = new (xmldom().DOMParser)({
      onError: (level, message) => {
        throw invalid(`XML ${level}: ${String(message).slice(0, 200)}`);
      },
    }).parseFromString(text, 'text/xml');
  } catch (err) {
    if (err instanceof AttestdError) throw err;
    const inner = (err as { cause?: unknown }).cause;
    if (inner instanceof AttestdError) throw inner;
    throw invalid(`not well-formed XML: ${err instanceof Error ? err.message.slice(0, 200) : String(err)}`, err);
  }
  if (!doc.documentElement) throw invalid('no root element');
  if (doc.getElementsByTagName('*').length > MAX_ELEMENTS) throw invalid(`more than ${MAX_ELEMENTS} elements`);
  return doc;
}

/** Child elements of `parent` with this namespace and local name. */
export function childElements(parent: Element, ns: string, localName: string): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1) {
      const el = n as Element;
      if (el.namespaceURI === ns && el.localName === localName) out.push(el);
    }
  }
  return out;
}

/** The one child element with this name, or RIM_INVALID. */
export function onlyChild(parent: Element, ns: string, localName: string): Element {
  const found = childElements(parent, ns, localName);
  if (found.length !== 1) throw invalid(`expected one <${localName}> in <${parent.localName ?? ''}>, found ${found.length}`);
  return found[0] as Element;
}
