/**
 * EFI_DEVICE_PATH_PROTOCOL (UEFI 2.10, section 10.3) rendered as a readable string in the
 * style of the UEFI text form, for the node types boot logs carry; any other node is shown
 * as Path(type,subtype,hex). Node lengths are checked against the bytes left, and the
 * number of nodes rendered is bounded; a malformed path throws EVENTLOG_MALFORMED.
 */
import { ByteReader } from '../bytes/reader.js';
import { guidAt, utf16Printable, utf8Printable } from './text.js';

const MAX_NODES = 64;

export function devicePathToString(buf: Buffer): string {
  const parts: string[] = [];
  const r = new ByteReader(buf, 'le', 'EVENTLOG_MALFORMED');
  while (r.remaining > 0) {
    if (parts.length >= MAX_NODES) {
      parts.push('...');
      break;
    }
    const at = r.offset;
    r.need(4, 'device path node header');
    const type = r.u8();
    const subtype = r.u8();
    const len = r.u16();
    if (len < 4 || len - 4 > r.remaining) r.fail(`device path node length ${len} at ${at} is out of bounds`);
    const body = r.bytes(len - 4, 'device path node');
    if (type === 0x7f) {
      if (subtype === 0xff) break;
      parts.push(',');
      continue;
    }
    parts.push(nodeToString(type, subtype, body));
  }
  return parts.join('/').replace(/\/,\//g, ',');
}

function nodeToString(type: number, subtype: number, b: Buffer): string {
  const fallback = `Path(${type},${subtype},${b.toString('hex')})`;
  switch (type) {
    case 0x01:
      if (subtype === 0x01 && b.length === 2) return `Pci(0x${hex(b[1])},0x${hex(b[0])})`;
      if (subtype === 0x03 && b.length === 20) {
        return `MemoryMapped(0x${hex(b.readUInt32LE(0))},0x${b.readBigUInt64LE(4).toString(16)},0x${b.readBigUInt64LE(12).toString(16)})`;
      }
      if (subtype === 0x04 && b.length >= 16) return `VenHw(${guidAt(b)}${vendorTail(b)})`;
      return fallback;
    case 0x02:
      if (subtype === 0x01 && b.length === 8) return acpi(b.readUInt32LE(0), b.readUInt32LE(4));
      return fallback;
    case 0x03:
      return messagingNode(subtype, b) ?? fallback;
    case 0x04:
      return mediaNode(subtype, b) ?? fallback;
    case 0x05:
      if (subtype === 0x01 && b.length >= 4) return `BBS(0x${hex(b.readUInt16LE(0))})`;
      return fallback;
    default:
      return fallback;
  }
}

function acpi(hid: number, uid: number): string {
  if ((hid & 0xffff) === 0x41d0) {
    const pnp = (hid >>> 16).toString(16).toUpperCase().padStart(4, '0');
    if (pnp === '0A03' || pnp === '0A08') return `PciRoot(0x${hex(uid)})`;
    return `Acpi(PNP${pnp},0x${hex(uid)})`;
  }
  return `Acpi(0x${hex(hid)},0x${hex(uid)})`;
}

function messagingNode(subtype: number, b: Buffer): string | undefined {
  switch (subtype) {
    case 0x02:
      return b.length === 4 ? `Scsi(0x${hex(b.readUInt16LE(0))},0x${hex(b.readUInt16LE(2))})` : undefined;
    case 0x05:
      return b.length === 2 ? `USB(0x${hex(b[0])},0x${hex(b[1])})` : undefined;
    case 0x0b:
      return b.length >= 33 ? `MAC(${b.subarray(0, 6).toString('hex')},0x${hex(b[32])})` : undefined;
    case 0x12:
      return b.length === 6
        ? `Sata(0x${hex(b.readUInt16LE(0))},0x${hex(b.readUInt16LE(2))},0x${hex(b.readUInt16LE(4))})`
        : undefined;
    case 0x17:
      return b.length === 12 ? `NVMe(0x${hex(b.readUInt32LE(0))},${b.subarray(4, 12).toString('hex')})` : undefined;
    case 0x18:
      return `Uri(${utf8Printable(b) ?? b.toString('hex')})`;
    case 0x0a:
      return b.length >= 16 ? `VenMsg(${guidAt(b)}${vendorTail(b)})` : undefined;
    default:
      return undefined;
  }
}

function mediaNode(subtype: number, b: Buffer): string | undefined {
  switch (subtype) {
    case 0x01: {
      if (b.length !== 38) return undefined;
      const part = b.readUInt32LE(0);
      const start = b.readBigUInt64LE(4).toString(16);
      const size = b.readBigUInt64LE(12).toString(16);
      const sigType = b[37];
      const sig = sigType === 0x02 ? `GPT,${guidAt(b, 20)}` : sigType === 0x01 ? `MBR,0x${hex(b.readUInt32LE(20))}` : 'None';
      return `HD(${part},${sig},0x${start},0x${size})`;
    }
    case 0x02:
      return b.length === 20 ? `CDROM(0x${hex(b.readUInt32LE(0))})` : undefined;
    case 0x03:
      return b.length >= 16 ? `VenMedia(${guidAt(b)}${vendorTail(b)})` : undefined;
    case 0x04:
      return utf16Printable(b);
    case 0x06:
      return b.length === 16 ? `FvFile(${guidAt(b)})` : undefined;
    case 0x07:
      return b.length === 16 ? `Fv(${guidAt(b)})` : undefined;
    case 0x08:
      return b.length === 20 ? `Offset(0x${b.readBigUInt64LE(4).toString(16)},0x${b.readBigUInt64LE(12).toString(16)})` : undefined;
    default:
      return undefined;
  }
}

function vendorTail(b: Buffer): string {
  return b.length > 16 ? `,${b.subarray(16).toString('hex')}` : '';
}

function hex(n: number | undefined): string {
  return (n ?? 0).toString(16);
}
