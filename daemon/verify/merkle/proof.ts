/**
 * RFC 6962 / RFC 9162 (sections 2.1.3 and 2.1.4) inclusion and consistency proofs over the
 * SHA-256 tree of tree.ts.
 *
 * Verification is stricter than the RFC text in a few places, each to match the
 * transparency-dev/merkle test vectors or to refuse input the RFC leaves undefined
 * (docs/audit-log.md, "Proof checks"):
 * - Sizes and indices must be non-negative safe integers (below 2^53); a larger uint64
 *   cannot be represented here and is refused, not rounded.
 * - Inclusion: index < size, so nothing is ever included in the empty tree. The leaf hash,
 *   every proof hash and the root must be 32 bytes. The proof must have exactly the length
 *   the (index, size) pair implies: extra or missing hashes fail even if a prefix would
 *   chain to the root.
 * - Consistency: the old size must be at least 1. A proof from the empty tree proves
 *   nothing (every tree extends it), and RFC 6962 defines PROOF(m, D[n]) only for
 *   0 < m; a caller holding a size-0 checkpoint checks its root against EMPTY_ROOT instead.
 *   This also refuses (0, 0), whatever the roots.
 * - Consistency with equal sizes: the proof must be empty and the roots byte-equal. No hash
 *   is computed there, so root length is not checked (roots from parseCheckpoint are always
 *   32 bytes).
 * - Consistency with old < new: the proof must be non-empty, every hash 32 bytes, of exactly
 *   the implied length, and must reproduce both roots.
 * Every verification failure is AttestdError('MERKLE_PROOF_INVALID') with the reason.
 * A proof binds the tree size only through the root (leaf 0 of 3 leaves and of 4 leaves take
 * the same path shape), so size and root must come from one signed checkpoint.
 *
 * Proof generation reads leaf hashes through an accessor so a large log can back it; see
 * subtree-hashes.ts for the memo and its cost (O(n) once, then O(log n) a proof).
 */
import { AttestdError } from '../../base/errors.js';
import { nodeHash } from './tree.js';
import { bitLength, HASH_SIZE, splitPoint, subtrees, type LeafHashSource } from './subtree-hashes.js';

export { HASH_SIZE, type LeafHashSource } from './subtree-hashes.js';

/** A tree of fewer than 2^53 leaves needs at most 53 inclusion or 54 consistency hashes. */
const MAX_PROOF_HASHES = 64;

function invalid(reason: string): AttestdError {
  return new AttestdError('MERKLE_PROOF_INVALID', `Merkle proof invalid: ${reason}`);
}

function badArgument(reason: string): AttestdError {
  return new AttestdError('INVALID_ARGUMENT', reason);
}

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function half(x: number): number {
  return Math.floor(x / 2);
}

function checkHashes(proof: readonly Uint8Array[]): void {
  if (!Array.isArray(proof)) throw invalid('proof is not an array');
  if (proof.length > MAX_PROOF_HASHES) throw invalid(`proof has ${proof.length} hashes`);
  proof.forEach((h, i) => {
    if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) throw invalid(`proof hash ${i} is not ${HASH_SIZE} bytes`);
  });
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/**
 * The root an inclusion proof implies for `leafHash` at `index` in a tree of `size` leaves
 * (RFC 9162 2.1.3.2). Checks: index and size are safe integers with index < size; the leaf
 * hash and every proof hash are 32 bytes; the proof has exactly the implied length.
 */
export function rootFromInclusion(leafHash: Uint8Array, index: number, size: number, proof: Uint8Array[]): Buffer {
  if (!isCount(index) || !isCount(size)) throw invalid('index and size must be non-negative safe integers');
  if (index >= size) throw invalid(`index ${index} is not below size ${size}`);
  if (!(leafHash instanceof Uint8Array) || leafHash.length !== HASH_SIZE) throw invalid(`leaf hash is not ${HASH_SIZE} bytes`);
  checkHashes(proof);
  let fn = index;
  let sn = size - 1;
  let r: Buffer = Buffer.from(leafHash);
  for (const p of proof) {
    if (sn === 0) throw invalid('proof has more hashes than the tree size implies');
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      // Climb past the levels where this node is a lone right-border child (no sibling).
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw invalid('proof has fewer hashes than the tree size implies');
  return r;
}

/** Checks everything rootFromInclusion checks, then that the implied root is `root` (32 bytes). */
export function verifyInclusion(leafHash: Uint8Array, index: number, size: number, proof: Uint8Array[], root: Uint8Array): void {
  const computed = rootFromInclusion(leafHash, index, size, proof);
  if (!(root instanceof Uint8Array) || root.length !== HASH_SIZE) throw invalid(`root is not ${HASH_SIZE} bytes`);
  if (!computed.equals(root)) throw invalid('computed root does not match');
}

/**
 * Checks that the tree of `newSize` leaves with `newRoot` extends the tree of `oldSize`
 * leaves with `oldRoot` (RFC 9162 2.1.4.2): sizes are safe integers with
 * 1 <= oldSize <= newSize; equal sizes need an empty proof and equal roots; otherwise the
 * proof is non-empty, of 32-byte hashes, of exactly the implied length, and reproduces
 * both roots.
 */
export function verifyConsistency(oldSize: number, newSize: number, proof: Uint8Array[], oldRoot: Uint8Array, newRoot: Uint8Array): void {
  if (!isCount(oldSize) || !isCount(newSize)) throw invalid('sizes must be non-negative safe integers');
  if (oldSize > newSize) throw invalid(`old size ${oldSize} is above new size ${newSize}`);
  if (oldSize === 0) throw invalid('a consistency proof from the empty tree proves nothing');
  checkHashes(proof);
  if (oldSize === newSize) {
    if (proof.length !== 0) throw invalid('sizes are equal but the proof is not empty');
    if (!equalBytes(oldRoot, newRoot)) throw invalid('sizes are equal but the roots differ');
    return;
  }
  if (proof.length === 0) throw invalid('proof is empty');
  // When the old tree is a perfect subtree its root is the starting node and is not sent.
  const path: Uint8Array[] = 2 ** (bitLength(oldSize) - 1) === oldSize ? [oldRoot, ...proof] : [...proof];
  if (!(path[0] instanceof Uint8Array) || path[0].length !== HASH_SIZE) throw invalid('old root does not match');
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (fn % 2 === 1) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr: Buffer = Buffer.from(path[0]);
  let sr: Buffer = fr;
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) throw invalid('proof has more hashes than the sizes imply');
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw invalid('proof has fewer hashes than the sizes imply');
  if (!equalBytes(fr, oldRoot)) throw invalid('old root does not match');
  if (!equalBytes(sr, newRoot)) throw invalid('new root does not match');
}

function copies(top: Buffer[]): Buffer[] {
  // Collected root-first; proofs run leaf-first. Copies keep callers out of the memo.
  return top.reverse().map((h) => Buffer.from(h));
}

/** RFC 6962 root of the first `size` leaves (EMPTY_ROOT is the caller's for size 0). */
export function treeRoot(leafHashes: LeafHashSource, size: number): Buffer {
  if (!isCount(size) || size === 0) throw badArgument('size must be a positive safe integer');
  return Buffer.from(subtrees(leafHashes, size).range(0, size));
}

/** Inclusion proof (RFC 6962 PATH) for leaf `index` in the tree of the first `size` leaves. */
export function inclusionProof(leafHashes: LeafHashSource, index: number, size: number): Buffer[] {
  if (!isCount(index) || !isCount(size) || index >= size) throw badArgument('need 0 <= index < size, safe integers');
  const tree = subtrees(leafHashes, size);
  const top: Buffer[] = [];
  let lo = 0;
  let hi = size;
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo);
    if (index < lo + k) {
      top.push(tree.range(lo + k, hi));
      hi = lo + k;
    } else {
      top.push(tree.range(lo, lo + k));
      lo += k;
    }
  }
  return copies(top);
}

/** Consistency proof (RFC 6962 PROOF(m, D[n])) from `oldSize` to `newSize`, 1 <= old <= new. */
export function consistencyProof(leafHashes: LeafHashSource, oldSize: number, newSize: number): Buffer[] {
  if (!isCount(oldSize) || !isCount(newSize) || oldSize === 0 || oldSize > newSize) {
    throw badArgument('need 1 <= oldSize <= newSize, safe integers');
  }
  const tree = subtrees(leafHashes, newSize);
  const top: Buffer[] = [];
  let lo = 0;
  let hi = newSize;
  let m = oldSize;
  // True while [lo, hi) is still a left spine of the whole tree, whose old root the verifier holds.
  let onSpine = true;
  while (m !== hi - lo) {
    const k = splitPoint(hi - lo);
    if (m <= k) {
      top.push(tree.range(lo + k, hi));
      hi = lo + k;
    } else {
      top.push(tree.range(lo, lo + k));
      lo += k;
      m -= k;
      onSpine = false;
    }
  }
  if (!onSpine) top.push(tree.range(lo, hi));
  return copies(top);
}
