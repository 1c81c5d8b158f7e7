/**
 * RFC 6962 Merkle tree hashing with a compact range: the log keeps only the roots of the
 * perfect subtrees covering [0, size) (at most log2(size) hashes), so an append costs
 * O(log n) and a restart needs no re-hash of earlier records beyond rebuilding this range.
 */
import { createHash } from 'node:crypto';

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

export function leafHash(data: Uint8Array): Buffer {
  return createHash('sha256').update(LEAF_PREFIX).update(data).digest();
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
}

/** SHA-256 of the empty string: the root of the empty tree. */
export const EMPTY_ROOT = createHash('sha256').digest();

export class CompactRange {
  /** Roots of perfect subtrees, largest (leftmost) first; their sizes are the set bits of `size`. */
  private readonly hashes: Buffer[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Rebuilds a range from its size and subtree roots (as state() returned them). */
  static fromState(size: number, hashes: Buffer[]): CompactRange {
    let bits = 0;
    for (let n = size; n > 0; n >>>= 1) bits += n & 1;
    if (!Number.isSafeInteger(size) || size < 0 || bits !== hashes.length || hashes.some((h) => h.length !== 32)) {
      throw new RangeError('compact range state does not match its size');
    }
    const r = new CompactRange();
    r.hashes.push(...hashes);
    r.count = size;
    return r;
  }

  /** Size and subtree roots: enough to continue appending without the leaves. */
  state(): { size: number; hashes: Buffer[] } {
    return { size: this.count, hashes: [...this.hashes] };
  }

  clone(): CompactRange {
    return CompactRange.fromState(this.count, this.hashes);
  }

  /** Appends one leaf hash (already prefixed with 0x00 and hashed). */
  appendLeafHash(hash: Buffer): void {
    let carry = hash;
    // Each trailing one bit of the old size is a subtree of equal height to merge with.
    for (let n = this.count; n & 1; n >>>= 1) {
      carry = nodeHash(this.hashes.pop()!, carry);
    }
    this.hashes.push(carry);
    this.count++;
  }

  append(data: Uint8Array): Buffer {
    const h = leafHash(data);
    this.appendLeafHash(h);
    return h;
  }

  /** RFC 6962 root hash over every leaf appended so far. */
  root(): Buffer {
    if (this.hashes.length === 0) return EMPTY_ROOT;
    let acc = this.hashes[this.hashes.length - 1]!;
    for (let i = this.hashes.length - 2; i >= 0; i--) acc = nodeHash(this.hashes[i]!, acc);
    return acc;
  }
}
