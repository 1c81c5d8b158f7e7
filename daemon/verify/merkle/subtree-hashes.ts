/**
 * Memoised RFC 6962 subtree hashes for proof generation over a large append-only log.
 *
 * Perfect subtrees of 16 or more leaves are memoised per leaf source (a WeakMap on its
 * identity), as flat 32-byte arrays per level: about 2 bytes a leaf. The first proof over n
 * leaves costs O(n) leaf reads and hashes; later proofs, for any size up to the largest seen
 * and growing as the log grows, cost O(log n): every other proof hash is a memoised perfect
 * subtree, except at most one non-perfect right-border subtree and the siblings below 16
 * leaves, which are rehashed. The memo assumes leaf i never changes for a given source, which
 * holds for an append-only log; after a truncation, pass a new accessor. A caller that builds
 * a new array or closure per call gets correct proofs at O(n) each.
 */
import { AttestdError } from '../../base/errors.js';
import { nodeHash } from './tree.js';

export const HASH_SIZE = 32;
/** Subtrees of 2^CACHED_LEVEL leaves and up are memoised; smaller ones are rehashed. */
const CACHED_LEVEL = 4;

export type LeafHashSource = Buffer[] | ((i: number) => Buffer);

function badArgument(reason: string): AttestdError {
  return new AttestdError('INVALID_ARGUMENT', reason);
}

/** Number of bits needed for x (0 for 0); exact for all safe integers, unlike 32-bit ops. */
export function bitLength(x: number): number {
  return x < 2 ** 32 ? 32 - Math.clz32(x) : 32 + bitLength(Math.floor(x / 2 ** 32));
}

/** The largest power of two strictly below n (n >= 2): where RFC 6962 splits a tree. */
export function splitPoint(n: number): number {
  return 2 ** (bitLength(n - 1) - 1);
}

/** Memoised perfect-subtree hashes over one append-only sequence of leaf hashes. */
export class SubtreeHashes {
  /** levels[l] holds counts[l] hashes of perfect subtrees of 2^(l + CACHED_LEVEL) leaves, left to right. */
  private readonly levels: Buffer[] = [];
  private readonly counts: number[] = [];

  constructor(private readonly leafAt: (i: number) => Buffer) {}

  leaf(i: number): Buffer {
    const h = this.leafAt(i);
    if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) throw badArgument(`leaf hash ${i} is not ${HASH_SIZE} bytes`);
    return h;
  }

  /** Hash of the perfect subtree of 2^level leaves starting at leaf index * 2^level. */
  perfect(level: number, index: number): Buffer {
    if (level < CACHED_LEVEL) return this.direct(level, index);
    const l = level - CACHED_LEVEL;
    while (this.levels.length <= l) {
      this.levels.push(Buffer.alloc(0));
      this.counts.push(0);
    }
    while (this.counts[l]! <= index) {
      const c = this.counts[l]!;
      const h = level === CACHED_LEVEL ? this.direct(level, c) : nodeHash(this.perfect(level - 1, 2 * c), this.perfect(level - 1, 2 * c + 1));
      this.store(l, h);
    }
    return this.levels[l]!.subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE);
  }

  /** MTH of leaves [lo, hi); lo is aligned as every subtree in an RFC 6962 proof is. */
  range(lo: number, hi: number): Buffer {
    const n = hi - lo;
    const level = bitLength(n) - 1;
    if (2 ** level === n) return this.perfect(level, lo / n);
    const k = splitPoint(n);
    return nodeHash(this.range(lo, lo + k), this.range(lo + k, hi));
  }

  private direct(level: number, index: number): Buffer {
    const start = index * 2 ** level;
    // A stack of (height, hash): merge while the top two have equal height.
    const stack: { h: number; hash: Buffer }[] = [];
    for (let i = 0; i < 2 ** level; i++) {
      let node = { h: 0, hash: this.leaf(start + i) };
      while (stack.length > 0 && stack[stack.length - 1]!.h === node.h) {
        const left = stack.pop()!;
        node = { h: node.h + 1, hash: nodeHash(left.hash, node.hash) };
      }
      stack.push(node);
    }
    return stack[0]!.hash;
  }

  private store(l: number, h: Buffer): void {
    const c = this.counts[l]!;
    let buf = this.levels[l]!;
    if ((c + 1) * HASH_SIZE > buf.length) {
      const grown = Buffer.alloc(Math.max(64, c * 2) * HASH_SIZE);
      buf.copy(grown, 0, 0, c * HASH_SIZE);
      buf = grown;
      this.levels[l] = buf;
    }
    h.copy(buf, c * HASH_SIZE);
    this.counts[l] = c + 1;
  }
}

const memo = new WeakMap<object, SubtreeHashes>();

/** The memo for `source`, after checking it can supply `size` leaves. */
export function subtrees(source: LeafHashSource, size: number): SubtreeHashes {
  if (Array.isArray(source)) {
    if (source.length < size) throw badArgument(`only ${source.length} leaf hashes for size ${size}`);
  } else if (typeof source !== 'function') {
    throw badArgument('leaf hashes must be an array or an accessor');
  }
  let s = memo.get(source);
  if (s === undefined) {
    const leafAt = Array.isArray(source) ? (i: number) => source[i]! : source;
    s = new SubtreeHashes(leafAt);
    memo.set(source, s);
  }
  return s;
}
