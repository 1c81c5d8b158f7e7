/**
 * GUIDs and strings as UEFI lays them out: EFI_GUID with its first three fields
 * little-endian, CHAR16 strings as UTF-16LE, and event text that may be either.
 */

/** EFI_GUID in registry form, e.g. 8be4df61-93ca-11d2-aa0d-00e098032b8c. */
export function guidAt(buf: Buffer, at = 0): string {
  const d1 = buf.readUInt32LE(at).toString(16).padStart(8, '0');
  const d2 = buf.readUInt16LE(at + 4).toString(16).padStart(4, '0');
  const d3 = buf.readUInt16LE(at + 6).toString(16).padStart(4, '0');
  const d4 = buf.toString('hex', at + 8, at + 10);
  const d5 = buf.toString('hex', at + 10, at + 16);
  return `${d1}-${d2}-${d3}-${d4}-${d5}`;
}

/** Well-known GUIDs met in boot logs, for readable output. */
export const GUID = {
  EFI_GLOBAL_VARIABLE: '8be4df61-93ca-11d2-aa0d-00e098032b8c',
  IMAGE_SECURITY_DATABASE: 'd719b2cb-3d3a-4596-a3bc-dad00e67656f',
  SHIM_LOCK: '605dab50-e046-4300-abb6-3dd810dd8b23',
  CERT_X509: 'a5c059a1-94e4-4aa7-87b5-ab155c2bf072',
  CERT_SHA256: 'c1c41626-504c-4092-aca9-41f936934328',
  CERT_SHA1: '826ca512-cf10-4ac9-b187-be01496631bd',
  CERT_SHA384: 'ff3e5307-9fd0-48c9-85f1-8ad56c701e01',
  CERT_SHA512: '093e0fae-a6c4-4f50-9f1b-d41e2b89c19a',
  CERT_RSA2048: '3c5766e8-269c-4e34-aa14-ed776e85b3b6',
  CERT_X509_SHA256: '3bd2a492-96c0-4079-b420-fcf98ef103ed',
  ACPI_20_TABLE: '8868e871-e4f1-11d3-bc22-0080c73c8881',
  ACPI_TABLE: 'eb9d2d30-2d88-11d3-9a16-0090273fc14d',
  SMBIOS_TABLE: 'eb9d2d31-2d88-11d3-9a16-0090273fc14d',
  SMBIOS3_TABLE: 'f2fd1544-9794-4a2c-992e-e5bbcf20e394',
} as const;

const GUID_NAMES: ReadonlyMap<string, string> = new Map(Object.entries(GUID).map(([k, v]) => [v, k]));

export function guidName(guid: string): string | undefined {
  return GUID_NAMES.get(guid);
}

/** A printable character: tab, newline, carriage return, or not a control character. */
function printable(code: number): boolean {
  if (code === 0x09 || code === 0x0a || code === 0x0d) return true;
  if (code < 0x20 || (code >= 0x7f && code < 0xa0)) return false;
  // Lone or paired surrogates alike: boot-time text has no use for them, binary data often does.
  return code !== 0xfffd && (code < 0xd800 || code > 0xdfff);
}

function allPrintable(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    if (!printable(s.charCodeAt(i))) return false;
  }
  return true;
}

/** A UTF-16LE string, cut at its first NUL; undefined unless the rest is printable. */
export function utf16Printable(buf: Buffer): string | undefined {
  if (buf.length % 2 !== 0) return undefined;
  let s = buf.toString('utf16le');
  const nul = s.indexOf('\0');
  if (nul >= 0) {
    if (!/^\0*$/.test(s.slice(nul))) return undefined;
    s = s.slice(0, nul);
  }
  return allPrintable(s) ? s : undefined;
}

/** A UTF-8 string, trailing NULs removed; undefined unless the rest is printable. */
export function utf8Printable(buf: Buffer): string | undefined {
  let end = buf.length;
  while (end > 0 && buf[end - 1] === 0) end--;
  const s = buf.toString('utf8', 0, end);
  return allPrintable(s) ? s : undefined;
}

/** Looks like UTF-16LE text: at least one character, and every high byte of ASCII text zero. */
export function looksUtf16(buf: Buffer): boolean {
  if (buf.length < 2 || buf.length % 2 !== 0) return false;
  let zeroHigh = 0;
  for (let i = 1; i < buf.length; i += 2) if (buf[i] === 0) zeroHigh++;
  return zeroHigh * 2 >= buf.length / 2;
}

/** Event text in whichever encoding fits: UTF-16LE when it looks like it, else UTF-8. */
export function decodeText(buf: Buffer): { encoding: 'utf-16le' | 'utf-8'; text: string } | undefined {
  if (looksUtf16(buf)) {
    const s = utf16Printable(buf);
    if (s !== undefined) return { encoding: 'utf-16le', text: s };
  }
  const s = utf8Printable(buf);
  return s === undefined ? undefined : { encoding: 'utf-8', text: s };
}
