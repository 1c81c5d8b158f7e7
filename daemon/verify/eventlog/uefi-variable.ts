/**
 * UEFI_VARIABLE_DATA (PFP 10.4.4) and the variable contents policy cares about:
 * SecureBoot's value byte, EFI_SIGNATURE_LIST chains in PK/KEK/db/dbx (UEFI 2.10, 32.4.1)
 * with X.509 subjects and SHA-256 hashes, the EFI_SIGNATURE_DATA that an
 * EV_EFI_VARIABLE_AUTHORITY event records, and BootOrder / Boot#### load options.
 */
import { X509Certificate } from 'node:crypto';
import { ByteReader } from '../bytes/reader.js';
import { devicePathToString } from './device-path.js';
import { GUID, decodeText, guidAt, guidName, utf16Printable } from './text.js';
import type { EventDetails } from './types.js';

/** Signature lists and entries per variable that are decoded; the rest are counted. */
const MAX_LISTS = 256;
const MAX_ENTRIES_SHOWN = 4096;

export function decodeVariable(data: Buffer, authority: boolean): EventDetails {
  const r = new ByteReader(data, 'le', 'EVENTLOG_MALFORMED');
  const guid = guidAt(r.bytes(16, 'VariableName'), 0);
  const nameChars = r.length64('UnicodeNameLength');
  const dataLength = r.length64('VariableDataLength');
  if (nameChars * 2 > r.remaining) r.fail(`UnicodeName needs ${nameChars * 2} bytes, ${r.remaining} left`);
  const nameBytes = r.bytes(nameChars * 2, 'UnicodeName');
  const value = r.bytes(dataLength, 'VariableData');
  const name = utf16Printable(nameBytes) ?? nameBytes.toString('hex');
  const out: EventDetails = { kind: 'uefi-variable', guid, name, dataLength, ...(guidName(guid) ? { guidName: guidName(guid) } : {}) };
  if (r.remaining !== 0) out.trailingBytes = r.remaining;
  Object.assign(out, variableContents(guid, name, value, authority));
  return out;
}

function variableContents(guid: string, name: string, value: Buffer, authority: boolean): Record<string, unknown> {
  const global = guid === GUID.EFI_GLOBAL_VARIABLE;
  const secDb = guid === GUID.IMAGE_SECURITY_DATABASE;
  if (global && (name === 'SecureBoot' || name === 'SetupMode' || name === 'AuditMode' || name === 'DeployedMode')) {
    return value.length === 1 ? { value: value[0] } : { data: value.toString('hex') };
  }
  if (authority) {
    return { authority: signatureData(value) };
  }
  if ((global && (name === 'PK' || name === 'KEK')) || (secDb && (name === 'db' || name === 'dbx' || name === 'dbt' || name === 'dbr'))) {
    return { signatureLists: signatureLists(value) };
  }
  if (global && name === 'BootOrder' && value.length % 2 === 0) {
    const order: string[] = [];
    for (let i = 0; i < value.length; i += 2) order.push(value.readUInt16LE(i).toString(16).padStart(4, '0'));
    return { bootOrder: order };
  }
  if (global && /^Boot[0-9A-Fa-f]{4}$/.test(name)) {
    try {
      return { loadOption: loadOption(value) };
    } catch {
      return { data: value.toString('hex') };
    }
  }
  const text = utf16Printable(value);
  return text !== undefined && value.length > 0 && (name === 'SbatLevel' || name === 'MokListTrusted') ? { text } : { data: value.toString('hex') };
}

/** EFI_SIGNATURE_LIST chain; each list's signatures are EFI_SIGNATURE_DATA of SignatureSize bytes. */
export function signatureLists(value: Buffer): Record<string, unknown>[] {
  const r = new ByteReader(value, 'le', 'EVENTLOG_MALFORMED');
  const lists: Record<string, unknown>[] = [];
  let shown = 0;
  while (r.remaining > 0) {
    if (lists.length >= MAX_LISTS) r.fail(`more than ${MAX_LISTS} signature lists`);
    const type = guidAt(r.bytes(16, 'SignatureType'));
    const listSize = r.u32('SignatureListSize');
    const headerSize = r.u32('SignatureHeaderSize');
    const sigSize = r.u32('SignatureSize');
    if (listSize < 28 || listSize - 28 > r.remaining) r.fail(`SignatureListSize ${listSize} is out of bounds`);
    const body = r.bytes(listSize - 28, 'signature list');
    if (headerSize > body.length) r.fail(`SignatureHeaderSize ${headerSize} exceeds the list`);
    const sigBytes = body.length - headerSize;
    if (sigSize < 16 || sigBytes % sigSize !== 0) r.fail(`SignatureSize ${sigSize} does not divide the list`);
    const count = sigBytes / sigSize;
    const list: Record<string, unknown> = { signatureType: type, count };
    const typeName = guidName(type);
    if (typeName) list.typeName = typeName;
    const entries: Record<string, unknown>[] = [];
    for (let i = 0; i < count && shown < MAX_ENTRIES_SHOWN; i++, shown++) {
      const at = headerSize + i * sigSize;
      const entry = body.subarray(at, at + sigSize);
      entries.push(signatureEntry(type, entry));
    }
    list.entries = entries;
    lists.push(list);
  }
  return lists;
}

function signatureEntry(type: string, entry: Buffer): Record<string, unknown> {
  const owner = guidAt(entry);
  const sig = entry.subarray(16);
  if (type === GUID.CERT_X509) return { owner, ...certificate(sig) };
  if (type === GUID.CERT_SHA256 || type === GUID.CERT_SHA1 || type === GUID.CERT_SHA384 || type === GUID.CERT_SHA512) {
    return { owner, hash: sig.toString('hex') };
  }
  return { owner, data: sig.toString('hex') };
}

/**
 * An authority event records the EFI_SIGNATURE_DATA that verified an image: owner GUID
 * then a certificate or hash. Shim also records bare certificates and strings here.
 */
function signatureData(value: Buffer): Record<string, unknown> {
  if (value.length > 16) {
    const cert = certificate(value.subarray(16));
    if (cert.subject !== undefined) return { owner: guidAt(value), ...cert };
  }
  const bare = certificate(value);
  if (bare.subject !== undefined) return bare;
  const text = value.length > 0 ? decodeText(value) : undefined;
  if (text !== undefined) return { text: text.text };
  return { data: value.toString('hex') };
}

function certificate(der: Buffer): Record<string, unknown> {
  if (der.length < 2 || der[0] !== 0x30) return { data: der.toString('hex') };
  try {
    const cert = new X509Certificate(der);
    return { subject: cert.subject, issuer: cert.issuer, serialNumber: cert.serialNumber, sha256: cert.fingerprint256 };
  } catch {
    return { data: der.toString('hex') };
  }
}

/** EFI_LOAD_OPTION: attributes, description, device path, optional data. */
function loadOption(value: Buffer): Record<string, unknown> {
  const r = new ByteReader(value, 'le', 'EVENTLOG_MALFORMED');
  const attributes = r.u32('Attributes');
  const pathLength = r.u16('FilePathListLength');
  let end = r.offset;
  while (end + 1 < value.length && (value[end] !== 0 || value[end + 1] !== 0)) end += 2;
  if (end + 1 >= value.length) r.fail('load option description is not terminated');
  const description = utf16Printable(value.subarray(r.offset, end)) ?? '';
  r.skip(end + 2 - r.offset, 'Description');
  const path = devicePathToString(r.bytes(pathLength, 'FilePathList'));
  const optional = value.subarray(r.offset);
  return { attributes, description, path, ...(optional.length ? { optionalData: optional.toString('hex') } : {}) };
}
