/**
 * The fixed UEFI event bodies of PFP 10.4: UEFI_IMAGE_LOAD_EVENT, UEFI_GPT_DATA,
 * UEFI_PLATFORM_FIRMWARE_BLOB(2) and UEFI_HANDOFF_TABLE_POINTERS(2). UINTN fields take
 * the width the Spec ID event declares.
 */
import { ByteReader } from '../bytes/reader.js';
import { devicePathToString } from './device-path.js';
import { guidAt, guidName, utf16Printable, utf8Printable } from './text.js';
import type { EventDetails } from './types.js';

/** Partitions and tables decoded per event; a GPT holds 128 entries at most in practice. */
const MAX_ITEMS = 1024;

const hex64 = (v: bigint): string => `0x${v.toString(16)}`;

/** A UINTN of `size` bytes (4 or 8), as a bigint. */
function readUintn(r: ByteReader, size: 4 | 8, what: string): bigint {
  return size === 4 ? BigInt(r.u32(what)) : r.u64(what);
}

export function imageLoad(data: Buffer, uintn: 4 | 8): EventDetails {
  const r = new ByteReader(data, 'le', 'EVENTLOG_MALFORMED');
  const location = r.u64('ImageLocationInMemory');
  const length = readUintn(r, uintn, 'ImageLengthInMemory');
  const linkTimeAddress = readUintn(r, uintn, 'ImageLinkTimeAddress');
  const pathLength = readUintn(r, uintn, 'LengthOfDevicePath');
  if (pathLength > BigInt(r.remaining)) r.fail(`LengthOfDevicePath ${pathLength} exceeds remaining ${r.remaining} bytes`);
  const pathBytes = r.bytes(Number(pathLength), 'DevicePath');
  let devicePath: string;
  try {
    devicePath = devicePathToString(pathBytes);
  } catch {
    devicePath = pathBytes.toString('hex');
  }
  return {
    kind: 'uefi-image-load',
    location: hex64(location),
    length: hex64(length),
    linkTimeAddress: hex64(linkTimeAddress),
    devicePathLength: Number(pathLength),
    devicePath,
  };
}

export function gpt(data: Buffer): EventDetails {
  const r = new ByteReader(data, 'le', 'EVENTLOG_MALFORMED');
  const signature = r.bytes(8, 'GPT Signature').toString('latin1');
  const revision = r.u32('Revision');
  const headerSize = r.u32('HeaderSize');
  r.skip(8, 'HeaderCRC32, Reserved');
  r.skip(32, 'LBAs');
  const diskGuid = guidAt(r.bytes(16, 'DiskGUID'));
  r.skip(8, 'PartitionEntryLBA');
  const entries = r.u32('NumberOfPartitionEntries');
  const entrySize = r.u32('SizeOfPartitionEntry');
  r.skip(4, 'PartitionEntryArrayCRC32');
  const count = r.length64('NumberOfPartitions');
  if (entrySize < 128) r.fail(`SizeOfPartitionEntry ${entrySize} is below 128`);
  if (count > Math.floor(r.remaining / entrySize)) r.fail(`${count} partitions exceed remaining ${r.remaining} bytes`);
  const partitions: Record<string, unknown>[] = [];
  for (let i = 0; i < count && i < MAX_ITEMS; i++) {
    const p = r.bytes(entrySize, 'partition entry');
    partitions.push({
      typeGuid: guidAt(p, 0),
      uniqueGuid: guidAt(p, 16),
      startingLba: hex64(p.readBigUInt64LE(32)),
      endingLba: hex64(p.readBigUInt64LE(40)),
      name: utf16Printable(p.subarray(56, 128)) ?? '',
    });
  }
  return { kind: 'uefi-gpt', signature, revision, headerSize, diskGuid, partitionEntries: entries, partitionCount: count, partitions };
}

export function firmwareBlob(data: Buffer): EventDetails {
  const r = new ByteReader(data, 'le', 'EVENTLOG_MALFORMED');
  const base = r.u64('BlobBase');
  const length = r.u64('BlobLength');
  return { kind: 'uefi-firmware-blob', base: hex64(base), length: hex64(length) };
}

export function firmwareBlob2(data: Buffer): EventDetails {
  const r = new ByteReader(data, 'le', 'EVENTLOG_MALFORMED');
  const size = r.u8('BlobDescriptionSize');
  const desc = r.bytes(size, 'BlobDescription');
  const base = r.u64('BlobBase');
  const length = r.u64('BlobLength');
  return {
    kind: 'uefi-firmware-blob2',
    description: utf8Printable(desc) ?? desc.toString('hex'),
    base: hex64(base),
    length: hex64(length),
  };
}

export function handoffTables(data: Buffer, withDescription: boolean): EventDetails {
  const r = new ByteReader(data, 'le', 'EVENTLOG_MALFORMED');
  let description: string | undefined;
  if (withDescription) {
    const size = r.u8('TableDescriptionSize');
    const desc = r.bytes(size, 'TableDescription');
    description = utf8Printable(desc) ?? desc.toString('hex');
  }
  const count = r.length64('NumberOfTables');
  if (count > Math.floor(r.remaining / 24)) r.fail(`${count} tables exceed remaining ${r.remaining} bytes`);
  const tables: Record<string, unknown>[] = [];
  for (let i = 0; i < count && i < MAX_ITEMS; i++) {
    const guid = guidAt(r.bytes(16, 'VendorGuid'));
    const address = r.u64('VendorTable');
    tables.push({ guid, name: guidName(guid) ?? guid, address: hex64(address) });
  }
  return { kind: withDescription ? 'uefi-handoff-tables2' : 'uefi-handoff-tables', ...(description !== undefined ? { description } : {}), tables };
}
