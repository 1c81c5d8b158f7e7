/**
 * Structured `details` for the event types policy looks at (PFP 10.4). Event data is
 * whatever the firmware or an attacker wrote, and most of it is not bound to the digest
 * that was extended, so decoding never fails the log: a body that does not decode is
 * reported as { kind: 'undecodable', reason, hex }.
 */
import { ByteReader } from '../bytes/reader.js';
import { EV } from './event-types.js';
import { noActionDetails } from './spec-id.js';
import { decodeText, guidAt, looksUtf16, utf16Printable, utf8Printable } from './text.js';
import { firmwareBlob, firmwareBlob2, gpt, handoffTables, imageLoad } from './uefi-structs.js';
import { decodeVariable } from './uefi-variable.js';
import type { EventDetails } from './types.js';

export interface DecodeContext {
  /** Width of UINTN fields, from the Spec ID event (8 when the log does not say). */
  uintn: 4 | 8;
}

export function decodeDetails(type: number, data: Buffer, ctx: DecodeContext): EventDetails {
  try {
    return decode(type, data, ctx);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return { kind: 'undecodable', reason, hex: data.toString('hex') };
  }
}

function decode(type: number, data: Buffer, ctx: DecodeContext): EventDetails {
  switch (type) {
    case EV.EFI_VARIABLE_DRIVER_CONFIG:
    case EV.EFI_VARIABLE_BOOT:
    case EV.EFI_VARIABLE_BOOT2:
      return decodeVariable(data, false);
    case EV.EFI_VARIABLE_AUTHORITY:
      return decodeVariable(data, true);
    case EV.EFI_BOOT_SERVICES_APPLICATION:
    case EV.EFI_BOOT_SERVICES_DRIVER:
    case EV.EFI_RUNTIME_SERVICES_DRIVER:
      return imageLoad(data, ctx.uintn);
    case EV.IPL:
      return text('ipl', data);
    case EV.SEPARATOR:
      return separator(data);
    case EV.EFI_ACTION:
    case EV.ACTION:
      return { kind: 'action', text: utf8Printable(data) ?? data.toString('latin1') };
    case EV.NO_ACTION:
      return noActionDetails(data);
    case EV.EVENT_TAG:
      return eventTag(data);
    case EV.EFI_GPT_EVENT:
      return gpt(data);
    case EV.EFI_PLATFORM_FIRMWARE_BLOB:
      return firmwareBlob(data);
    case EV.EFI_PLATFORM_FIRMWARE_BLOB2:
      return firmwareBlob2(data);
    case EV.S_CRTM_VERSION:
      return crtmVersion(data);
    case EV.S_CRTM_CONTENTS:
      return text('s-crtm-contents', data);
    case EV.POST_CODE:
      return postCode(data);
    case EV.EFI_HANDOFF_TABLES:
      return handoffTables(data, false);
    case EV.EFI_HANDOFF_TABLES2:
      return handoffTables(data, true);
    default:
      return { kind: 'raw', hex: data.toString('hex') };
  }
}

/** The separator's value; 0x00000001 marks a pre-OS error (PFP 10.4.4, EV_SEPARATOR). */
function separator(data: Buffer): EventDetails {
  if (data.length !== 4) return { kind: 'separator', hex: data.toString('hex'), error: false };
  const value = data.readUInt32LE(0);
  return { kind: 'separator', value, error: value === 1 };
}

function text(kind: string, data: Buffer): EventDetails {
  const t = decodeText(data);
  return t ? { kind, encoding: t.encoding, text: t.text } : { kind, hex: data.toString('hex') };
}

function eventTag(data: Buffer): EventDetails {
  const r = new ByteReader(data, 'le', 'EVENTLOG_MALFORMED');
  const id = r.u32('taggedEventID');
  const size = r.u32('taggedEventDataSize');
  if (size !== r.remaining) r.fail(`taggedEventDataSize ${size} does not match the ${r.remaining} bytes left`);
  return { kind: 'event-tag', taggedEventId: id, data: r.hex(size) };
}

/** A CHAR16 version string, or (on some platforms) a GUID. */
function crtmVersion(data: Buffer): EventDetails {
  const s = looksUtf16(data) ? utf16Printable(data) : undefined;
  if (s !== undefined) return { kind: 's-crtm-version', text: s };
  if (data.length === 16) return { kind: 's-crtm-version', guid: guidAt(data) };
  return { kind: 's-crtm-version', hex: data.toString('hex') };
}

/** POST code events carry either a string ("ACPI DATA") or a UEFI_PLATFORM_FIRMWARE_BLOB. */
function postCode(data: Buffer): EventDetails {
  const s = data.length > 0 ? utf8Printable(data) : undefined;
  if (s !== undefined && s.length > 0) return { kind: 'post-code', text: s };
  if (data.length === 16) return { ...firmwareBlob(data), kind: 'post-code' };
  return { kind: 'post-code', hex: data.toString('hex') };
}
