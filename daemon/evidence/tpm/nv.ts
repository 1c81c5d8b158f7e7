/**
 * Reading a TPM NV index: its public area (TPMS_NV_PUBLIC, TPM 2.0 Part 2, 13.5), then its
 * data with TPM2_NV_Read in chunks no larger than the TPM takes (Part 3, 31.13).
 *
 * The public area comes from the TPM and is parsed like any untrusted structure; its size
 * bounds how much is read, and that size is itself bounded by the caller.
 *
 * Which authorisation reads an index is in its attributes: the index itself (AUTHREAD), the
 * owner hierarchy (OWNERREAD) or the platform hierarchy (PPREAD), each with the empty auth
 * value ESYS assumes. A failed authorisation counts against the TPM's dictionary-attack
 * lockout unless the index is NO_DA, so the index's own auth goes first only on a NO_DA
 * index, and nothing is ever tried twice.
 */
import { AttestdError } from '../../base/errors.js';
import { TpmReader } from '../../verify/tpm-reader.js';
import { Arena, readU32 } from './arena.js';
import { classifyRc, layerOf, rcError } from './rc.js';
import { sendCommand } from './send.js';
import { ESYS_TR, type Ptr, type Tss } from './tss.js';

/** TPMA_NV bits used here (TPM 2.0 Part 2, 13.4). */
export const TPMA_NV = {
  PPREAD: 1 << 16,
  OWNERREAD: 1 << 17,
  AUTHREAD: 1 << 18,
  POLICYREAD: 1 << 19,
  NO_DA: 1 << 25,
  READLOCKED: 1 << 28,
  WRITTEN: 1 << 29,
} as const;

/** TPM_RC_HANDLE (format 1, a handle error): the index is not defined. */
const TPM_RC_HANDLE = 0x08b;
/** TPM_RC_NV_UNINITIALIZED (format 0, no handle bits): defined but never written. */
const TPM_RC_NV_UNINITIALIZED = 0x14a;
/** sizeof(TPMU_HA): an authPolicy digest. */
const MAX_DIGEST = 64;

export interface NvPublic {
  index: number;
  nameAlg: number;
  attributes: number;
  dataSize: number;
}

export type NvReadAuth = 'index' | 'owner' | 'platform';

export interface NvReadOptions {
  /** Larger indices are refused (TPM_COMMAND_FAILED) before anything is read. */
  maxSize: number;
  /** Bytes per NV_Read: at most the TPM's TPM_PT_NV_BUFFER_MAX. */
  chunk: number;
}

/** A marshalled TPM2B_NV_PUBLIC; anything malformed is TPM_COMMAND_FAILED. */
export function parseNvPublic(bytes: Uint8Array): NvPublic {
  try {
    const outer = new TpmReader(bytes);
    const size = outer.u16();
    const r = new TpmReader(outer.bytes(size, 'TPM2B_NV_PUBLIC'));
    outer.end('TPM2B_NV_PUBLIC');
    const index = r.u32();
    const nameAlg = r.u16();
    const attributes = r.u32();
    r.tpm2b(MAX_DIGEST, 'authPolicy');
    const dataSize = r.u16();
    r.end('TPMS_NV_PUBLIC');
    return { index, nameAlg, attributes, dataSize };
  } catch (err) {
    throw new AttestdError('TPM_COMMAND_FAILED', `malformed NV public area: ${(err as Error).message}`, { cause: err });
  }
}

/** The authorisations that may read an index with these attributes, in the order to try them. */
export function readAuthOrder(attributes: number): NvReadAuth[] {
  const has = (bit: number): boolean => (attributes & bit) !== 0;
  const order: NvReadAuth[] = [];
  if (has(TPMA_NV.AUTHREAD) && has(TPMA_NV.NO_DA)) order.push('index');
  if (has(TPMA_NV.OWNERREAD)) order.push('owner');
  if (has(TPMA_NV.AUTHREAD) && !has(TPMA_NV.NO_DA)) order.push('index');
  if (has(TPMA_NV.PPREAD)) order.push('platform');
  return order;
}

/** Whether `rc` is the TPM's answer for a handle that names nothing. */
export function isMissingHandle(rc: number): boolean {
  // Bits 8..11 carry the handle's position; a handle (not parameter) error has bit 6 clear.
  return layerOf(rc) === 0 && (rc & ~0xf00) >>> 0 === TPM_RC_HANDLE;
}

/**
 * The data of NV index `index`, or undefined when the index is not defined or never written.
 * Throws TPM_COMMAND_FAILED when the TPM refuses (read-locked, no authorisation works, larger
 * than `maxSize`), TPM_UNAVAILABLE when the link breaks. Must run inside the caller's
 * one-command-at-a-time queue.
 */
export async function readNvIndex(tss: Tss, ctx: Ptr, index: number, opts: NvReadOptions): Promise<Buffer | undefined> {
  if (!Number.isInteger(opts.chunk) || opts.chunk < 1 || opts.chunk > 0xffff) {
    throw new AttestdError('INVALID_ARGUMENT', `NV read chunk ${opts.chunk} is outside 1..65535`);
  }
  const arena = new Arena(tss);
  const slot = arena.value();
  try {
    const rc = await sendCommand(() => tss.trFromTpmPublic(ctx, index, slot));
    if (isMissingHandle(rc)) return undefined;
    if (rc !== 0) throw rcError(`Esys_TR_FromTPMPublic(0x${hex(index)})`, rc, tss.decodeRc);
    try {
      return await readWithObject(tss, ctx, index, readU32(slot), opts);
    } finally {
      await tss.trClose(ctx, slot).catch(() => 0);
    }
  } finally {
    arena.release();
  }
}

async function readWithObject(tss: Tss, ctx: Ptr, index: number, object: number, opts: NvReadOptions) {
  const pub = await readPublic(tss, ctx, index, object);
  if (pub.index !== index) {
    throw new AttestdError('TPM_COMMAND_FAILED', `NV_ReadPublic(0x${hex(index)}) described index 0x${hex(pub.index)}`);
  }
  if ((pub.attributes & TPMA_NV.WRITTEN) === 0) return undefined;
  if ((pub.attributes & TPMA_NV.READLOCKED) !== 0) {
    throw new AttestdError('TPM_COMMAND_FAILED', `NV index 0x${hex(index)} is read-locked`);
  }
  if (pub.dataSize > opts.maxSize) {
    throw new AttestdError('TPM_COMMAND_FAILED', `NV index 0x${hex(index)} holds ${pub.dataSize} bytes, more than ${opts.maxSize}`);
  }
  const order = readAuthOrder(pub.attributes);
  if (order.length === 0) {
    throw new AttestdError('TPM_COMMAND_FAILED', `NV index 0x${hex(index)} cannot be read with a password (policy read only)`);
  }
  const authHandle = (a: NvReadAuth): number =>
    a === 'index' ? object : a === 'owner' ? ESYS_TR.RH_OWNER : ESYS_TR.RH_PLATFORM;

  // The first chunk settles which authorisation works; the rest use it.
  const firstSize = Math.min(opts.chunk, pub.dataSize);
  const refusals: string[] = [];
  for (const auth of order) {
    const first = await readChunk(tss, ctx, authHandle(auth), object, index, firstSize, 0);
    if (first === 'uninitialized') return undefined;
    if (first instanceof AttestdError) {
      refusals.push(`${auth}: ${first.message}`);
      continue;
    }
    const parts = [first];
    for (let offset = firstSize; offset < pub.dataSize; offset += opts.chunk) {
      const size = Math.min(opts.chunk, pub.dataSize - offset);
      const part = await readChunk(tss, ctx, authHandle(auth), object, index, size, offset);
      if (part === 'uninitialized') return undefined;
      if (part instanceof AttestdError) throw part;
      parts.push(part);
    }
    return Buffer.concat(parts);
  }
  throw new AttestdError('TPM_COMMAND_FAILED', `NV index 0x${hex(index)} could not be read: ${refusals.join('; ')}`);
}

async function readPublic(tss: Tss, ctx: Ptr, index: number, object: number): Promise<NvPublic> {
  const arena = new Arena(tss);
  try {
    const nvPublic = arena.output();
    const rc = await sendCommand(() => tss.nvReadPublic(ctx, object, { nvPublic }));
    if (rc !== 0) throw rcError(`Esys_NV_ReadPublic(0x${hex(index)})`, rc, tss.decodeRc);
    const bytes = arena.take(nvPublic, 'TPM2B_NV_PUBLIC');
    if (bytes === null) throw new AttestdError('TPM_COMMAND_FAILED', 'Esys_NV_ReadPublic returned no public area');
    return parseNvPublic(bytes);
  } finally {
    arena.release();
  }
}

/**
 * One NV_Read: the bytes, 'uninitialized', or the TPM's refusal as an error value. A broken
 * link or a bug on our side is thrown: trying another authorisation cannot help with those.
 */
async function readChunk(
  tss: Tss,
  ctx: Ptr,
  authHandle: number,
  object: number,
  index: number,
  size: number,
  offset: number,
): Promise<Buffer | 'uninitialized' | AttestdError> {
  const arena = new Arena(tss);
  try {
    const data = arena.output();
    const rc = await sendCommand(() => tss.nvRead(ctx, authHandle, object, size, offset, { data }));
    if (rc >>> 0 === TPM_RC_NV_UNINITIALIZED) return 'uninitialized';
    if (rc !== 0) {
      const err = rcError(`Esys_NV_Read(0x${hex(index)}, ${size}@${offset})`, rc, tss.decodeRc);
      if (classifyRc(rc) !== 'TPM_COMMAND_FAILED') throw err;
      return err;
    }
    const bytes = arena.take(data, 'TPM2B_MAX_NV_BUFFER');
    if (bytes === null || bytes.length < 2 || bytes.readUInt16BE(0) !== bytes.length - 2 || bytes.length - 2 !== size) {
      throw new AttestdError('TPM_COMMAND_FAILED', `NV_Read(0x${hex(index)}) returned other than the ${size} bytes asked for`);
    }
    return Buffer.from(bytes.subarray(2));
  } finally {
    arena.release();
  }
}

function hex(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}
