/**
 * Intel PCS signed JSON collateral ({"tcbInfo": {...}, "signature": "<hex r||s>"} and
 * {"enclaveIdentity": {...}, "signature": ...}). The signature covers the exact bytes of the
 * inner object as served, so the span is cut from the raw text, never re-serialised.
 */
import { AttestdError } from '../../base/errors.js';
import { verifyP256Raw } from './qe.js';
import type { IntelCertificate } from './intel-certificate.js';

/** PCS responses are a few KiB; anything much larger is not collateral. */
export const MAX_COLLATERAL_JSON = 256 * 1024;

export interface SignedJson {
  /** The top-level key holding the signed body ("tcbInfo" or "enclaveIdentity"). */
  key: string;
  /** Exact bytes of the signed body. */
  bodyBytes: Buffer;
  /** The signed body, parsed. */
  body: unknown;
  /** Raw r||s, 64 bytes. */
  signature: Buffer;
}

function invalid(message: string): never {
  throw new AttestdError('TDX_COLLATERAL_INVALID', message);
}

/** Splits PCS signed JSON; TDX_COLLATERAL_INVALID when it is not exactly that shape. */
export function parseSignedJson(bytes: Uint8Array, key: string): SignedJson {
  if (bytes.byteLength > MAX_COLLATERAL_JSON) invalid(`collateral JSON is ${bytes.byteLength} bytes`);
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  let whole: unknown;
  try {
    whole = JSON.parse(text);
  } catch (err) {
    throw new AttestdError('TDX_COLLATERAL_INVALID', 'collateral is not JSON', { cause: err });
  }
  if (typeof whole !== 'object' || whole === null || Array.isArray(whole)) invalid('collateral JSON is not an object');
  const sigHex = (whole as Record<string, unknown>).signature;
  if (typeof sigHex !== 'string' || !/^[0-9a-fA-F]{128}$/.test(sigHex)) invalid('collateral signature is not 64 bytes of hex');
  const span = topLevelSpan(text, key);
  if (!span) invalid(`collateral has no top-level "${key}" object`);
  const bodyText = text.slice(span[0], span[1]);
  const body = JSON.parse(bodyText) as unknown;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) invalid(`"${key}" is not an object`);
  return { key, bodyBytes: Buffer.from(bodyText, 'utf8'), body, signature: Buffer.from(sigHex, 'hex') };
}

/** Throws TDX_COLLATERAL_INVALID unless `signer` (the TCB signing certificate) signed the body. */
export function verifySignedJson(doc: SignedJson, signer: IntelCertificate): void {
  if (!verifyP256Raw(signer.publicKey, doc.bodyBytes, doc.signature)) {
    invalid(`the "${doc.key}" signature does not verify with "${signer.subjectCn}"`);
  }
}

/**
 * Character offsets [start, end) of the value of `key` in the top-level object of `text`.
 * The text already parsed as JSON, so the scan only has to track strings and nesting.
 */
export function topLevelSpan(text: string, key: string): [number, number] | undefined {
  let depth = 0;
  let i = 0;
  let found: [number, number] | undefined;
  let pendingKey: string | undefined;
  let valueStart = -1;
  let expectKey = false;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') {
      const start = i;
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
      if (depth === 1 && expectKey) {
        pendingKey = JSON.parse(text.slice(start, i)) as string;
        expectKey = false;
      } else if (depth === 1 && valueStart === start) {
        if (pendingKey === key && !found) found = [start, i];
      }
      continue;
    }
    if (c === '{' || c === '[') {
      if (depth === 1 && valueStart === i && pendingKey === key && c === '{') {
        const end = matchingClose(text, i);
        if (found) return undefined;
        found = [i, end];
        i = end;
        continue;
      }
      depth++;
      if (depth === 1) expectKey = true;
    } else if (c === '}' || c === ']') {
      depth--;
    } else if (c === ',' && depth === 1) {
      expectKey = true;
    } else if (c === ':' && depth === 1) {
      valueStart = nextNonSpace(text, i + 1);
    }
    i++;
  }
  return found && text[found[0]] === '{' ? found : undefined;
}

function nextNonSpace(text: string, i: number): number {
  while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++;
  return i;
}

function matchingClose(text: string, open: number): number {
  let depth = 0;
  let i = open;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    } else if (c === '{' || c === '[') {
      depth++;
    } else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i + 1;
    }
    i++;
  }
  return text.length;
}
