/**
 * Native memory for one ESYS call: zeroed input structures, output slots, and the release
 * of everything afterwards, including the structures ESYS allocated into those slots.
 *
 * Memory comes from koffi.alloc (stable addresses), never from JS Buffers: the call runs on
 * a worker thread while the event loop may move or collect JS memory.
 */
import koffi from 'koffi';
import type { MuType, Ptr, Tss } from './tss.js';

/**
 * Room for any input structure in MuType. The largest, TPM2B_PUBLIC, is well under 1 KiB in
 * tpm2-tss 3.x; over-allocating keeps struct sizes out of this code.
 */
const STRUCT_BYTES = 4096;
const SLOT_BYTES = 8;

export class Arena {
  private readonly blocks: Ptr[] = [];
  private readonly esysOutputs: Ptr[] = [];

  constructor(private readonly tss: Tss) {}

  /** A zeroed native structure holding `bytes` unmarshalled as `type`. */
  input(type: MuType, bytes: Buffer): Ptr {
    const p = this.alloc(STRUCT_BYTES);
    this.tss.unmarshal(type, bytes, p);
    return p;
  }

  /** A slot for a pointer that ESYS allocates; it is Esys_Free'd by release(). */
  output(): Ptr {
    const p = this.alloc(SLOT_BYTES);
    this.esysOutputs.push(p);
    return p;
  }

  /** A slot for a plain value (an ESYS_TR, a counter) or for a context pointer. */
  value(): Ptr {
    return this.alloc(SLOT_BYTES);
  }

  /** Marshals the structure ESYS left in an output slot; null when it left none. */
  take(slot: Ptr, type: MuType): Buffer | null {
    const p = readPtr(slot);
    return p === null ? null : this.tss.marshal(type, p);
  }

  /** Frees ESYS outputs and native blocks; safe to call more than once. */
  release(): void {
    for (const slot of this.esysOutputs.splice(0)) {
      const p = readPtr(slot);
      if (p !== null) {
        this.tss.free(p);
        koffi.encode(slot, 'void *', null);
      }
    }
    for (const p of this.blocks.splice(0)) koffi.free(p);
  }

  private alloc(size: number): Ptr {
    const p = koffi.alloc('uint8_t', size) as Ptr;
    new Uint8Array(koffi.view(p, size)).fill(0);
    this.blocks.push(p);
    return p;
  }
}

export function readPtr(slot: Ptr): Ptr | null {
  const p: unknown = koffi.decode(slot, 'void *');
  if (typeof p === 'bigint') return p === 0n ? null : p;
  return null;
}

export function readU32(slot: Ptr): number {
  return (koffi.decode(slot, 'uint32_t') as number) >>> 0;
}
