import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { AttestdError } from '../../daemon/base/errors.js';
import { CompactRange, EMPTY_ROOT } from '../../daemon/verify/merkle/tree.js';
import {
  consistencyProof,
  inclusionProof,
  rootFromInclusion,
  treeRoot,
  verifyConsistency,
  verifyInclusion,
} from '../../daemon/verify/merkle/proof.js';
import { makeLeaves, merkleVectors, naiveConsistency, naivePath, naiveRoot } from './log-helpers.js';

const b64 = (s: unknown): Buffer => Buffer.from(typeof s === 'string' ? s : '', 'base64');
const b64List = (v: unknown): Buffer[] => (Array.isArray(v) ? v.map(b64) : []);

function expectProofError(fn: () => void): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(AttestdError);
  expect((thrown as AttestdError).code).toBe('MERKLE_PROOF_INVALID');
}

function flip(buf: Uint8Array, byte: number, bit = 0): Buffer {
  const out = Buffer.from(buf);
  out[byte % out.length]! ^= 1 << bit;
  return out;
}

describe('transparency-dev/merkle inclusion vectors', () => {
  const vectors = merkleVectors('inclusion');
  it('are all present', () => {
    expect(vectors.length).toBe(98);
  });
  it.each(vectors.map((v) => [v.name, v.json] as const))('%s', (_name, v) => {
    const run = (): void => verifyInclusion(b64(v.leafHash), v.leafIdx as number, v.treeSize as number, b64List(v.proof), b64(v.root));
    if (v.wantErr) expectProofError(run);
    else expect(run).not.toThrow();
  });
});

describe('transparency-dev/merkle consistency vectors', () => {
  const vectors = merkleVectors('consistency');
  it('are all present', () => {
    expect(vectors.length).toBe(98);
  });
  it.each(vectors.map((v) => [v.name, v.json] as const))('%s', (_name, v) => {
    const run = (): void => verifyConsistency(v.size1 as number, v.size2 as number, b64List(v.proof), b64(v.root1), b64(v.root2));
    if (v.wantErr) expectProofError(run);
    else expect(run).not.toThrow();
  });
});

describe('proof generation against the RFC 6962 definitions', () => {
  const leaves = makeLeaves(40);

  it('treeRoot matches MTH and CompactRange for every size up to 40', () => {
    const range = new CompactRange();
    for (let n = 1; n <= leaves.length; n++) {
      range.appendLeafHash(leaves[n - 1]!);
      const want = naiveRoot(leaves.slice(0, n));
      expect(treeRoot(leaves, n).equals(want)).toBe(true);
      expect(range.root().equals(want)).toBe(true);
    }
  });

  it('inclusion proofs equal PATH(m, D[n]) and verify, for every (m, n) up to 40', () => {
    for (let n = 1; n <= leaves.length; n++) {
      const prefix = leaves.slice(0, n);
      const root = naiveRoot(prefix);
      for (let m = 0; m < n; m++) {
        const proof = inclusionProof(leaves, m, n);
        expect(proof).toEqual(naivePath(m, prefix));
        verifyInclusion(leaves[m]!, m, n, proof, root);
        expect(rootFromInclusion(leaves[m]!, m, n, proof).equals(root)).toBe(true);
      }
    }
  });

  it('consistency proofs equal PROOF(m, D[n]) and verify, for every 1 <= m <= n up to 40', () => {
    for (let n = 1; n <= leaves.length; n++) {
      const prefix = leaves.slice(0, n);
      const newRoot = naiveRoot(prefix);
      for (let m = 1; m <= n; m++) {
        const proof = consistencyProof((i) => leaves[i]!, m, n);
        expect(proof).toEqual(naiveConsistency(m, prefix));
        verifyConsistency(m, n, proof, naiveRoot(leaves.slice(0, m)), newRoot);
      }
    }
  });

  it('returns copies, so a caller mutating a proof cannot corrupt later proofs', () => {
    const source = makeLeaves(64, 1);
    const first = inclusionProof(source, 0, 64);
    first[5]!.fill(0);
    verifyInclusion(source[0]!, 0, 64, inclusionProof(source, 0, 64), naiveRoot(source));
  });

  it('refuses bad generation arguments with INVALID_ARGUMENT', () => {
    const cases: (() => unknown)[] = [
      () => inclusionProof(leaves, 0, 0),
      () => inclusionProof(leaves, 5, 5),
      () => inclusionProof(leaves, -1, 5),
      () => inclusionProof(leaves, 0, 41), // only 40 leaves in the array
      () => inclusionProof(() => Buffer.alloc(31), 0, 2),
      () => consistencyProof((i) => leaves[i]!, 0, 5),
      () => consistencyProof((i) => leaves[i]!, 6, 5),
      () => consistencyProof((i) => leaves[i]!, 1, 2 ** 53),
      () => treeRoot(leaves, 0),
    ];
    for (const c of cases) expect(c).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('strict cases', () => {
  const leaves = makeLeaves(8);
  const root8 = naiveRoot(leaves);

  it('refuses any consistency proof from size 0, even to the empty tree', () => {
    expectProofError(() => verifyConsistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT));
    expectProofError(() => verifyConsistency(0, 8, [], EMPTY_ROOT, root8));
  });

  it('refuses sizes and indices that are not safe integers', () => {
    const proof = inclusionProof(leaves, 0, 8);
    expectProofError(() => verifyInclusion(leaves[0]!, 2 ** 64, 8, proof, root8));
    expectProofError(() => verifyInclusion(leaves[0]!, 0.5, 8, proof, root8));
    expectProofError(() => verifyInclusion(leaves[0]!, 0, Number.NaN, proof, root8));
    expectProofError(() => verifyConsistency(1, 2 ** 53, [], leaves[0]!, root8));
  });

  it('works with sizes beyond 32 bits', () => {
    // A right-border leaf of a huge tree: the proof is the left siblings only.
    const size = 2 ** 40 + 1;
    const proof = [leaves[1]!];
    const root = rootFromInclusion(leaves[0]!, size - 1, size, proof);
    expect(root.equals(naiveRoot([leaves[1]!, leaves[0]!]))).toBe(true);
    expectProofError(() => rootFromInclusion(leaves[0]!, size - 2, size, proof));
  });

  it('a proof does not bind the tree size by itself: size and root must come from one checkpoint', () => {
    // Index 0 climbs with right siblings only in trees of 3 and of 4 leaves, so the same
    // proof and root pass for both sizes; the root, taken from a signed checkpoint, is what pins the size.
    const three = leaves.slice(0, 3);
    const proof = inclusionProof(three, 0, 3);
    verifyInclusion(three[0]!, 0, 4, proof, naiveRoot(three));
    verifyConsistency(1, 4, consistencyProof(three, 1, 3), three[0]!, naiveRoot(three));
  });

  it('refuses proofs longer than any real tree needs before hashing', () => {
    const long = Array.from({ length: 65 }, () => Buffer.alloc(32));
    expectProofError(() => verifyInclusion(leaves[0]!, 0, 8, long, root8));
    expectProofError(() => verifyConsistency(1, 8, long, leaves[0]!, root8));
  });
});

describe('properties', () => {
  const tree = fc.integer({ min: 1, max: 200 }).chain((n) => fc.record({ n: fc.constant(n), seed: fc.nat(1000) }));

  it('generated inclusion proofs verify and every single-byte or structural mutation fails', () => {
    fc.assert(
      fc.property(tree, fc.nat(), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 7 }), ({ n, seed }, iRaw, pick, byte, bit) => {
        const leaves = makeLeaves(n, seed);
        const index = iRaw % n;
        const root = naiveRoot(leaves);
        const proof = inclusionProof(leaves, index, n);
        verifyInclusion(leaves[index]!, index, n, proof, root);

        expectProofError(() => verifyInclusion(flip(leaves[index]!, byte, bit), index, n, proof, root));
        expectProofError(() => verifyInclusion(leaves[index]!, index, n, proof, flip(root, byte, bit)));
        if (n > 1) {
          const at = pick % proof.length;
          const bytes = proof.map((h, j) => (j === at ? flip(h, byte, bit) : h));
          expectProofError(() => verifyInclusion(leaves[index]!, index, n, bytes, root));
          expectProofError(() => verifyInclusion(leaves[index]!, index, n, proof.slice(0, -1), root));
          expectProofError(() => verifyInclusion(leaves[index]!, index, n, proof.slice(1), root));
          expectProofError(() => verifyInclusion(leaves[index]!, index, n, [...proof.slice(0, at), proof[at]!, ...proof.slice(at)], root));
          const other = (index + 1 + (pick % (n - 1))) % n;
          expectProofError(() => verifyInclusion(leaves[index]!, other, n, proof, root));
          expectProofError(() => verifyInclusion(leaves[other]!, index, n, proof, root));
        }
        expectProofError(() => verifyInclusion(leaves[index]!, index, n, [...proof, root], root));
      }),
      { numRuns: 150 },
    );
  });

  it('generated consistency proofs verify and every single-byte or structural mutation fails', () => {
    fc.assert(
      fc.property(tree, fc.nat(), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 7 }), ({ n, seed }, mRaw, pick, byte, bit) => {
        const leaves = makeLeaves(n, seed);
        const m = 1 + (mRaw % n);
        const oldRoot = naiveRoot(leaves.slice(0, m));
        const newRoot = naiveRoot(leaves);
        const proof = consistencyProof((i) => leaves[i]!, m, n);
        verifyConsistency(m, n, proof, oldRoot, newRoot);

        expectProofError(() => verifyConsistency(m, n, proof, flip(oldRoot, byte, bit), newRoot));
        expectProofError(() => verifyConsistency(m, n, proof, oldRoot, flip(newRoot, byte, bit)));
        expectProofError(() => verifyConsistency(m, n, [...proof, oldRoot], oldRoot, newRoot));
        expectProofError(() => verifyConsistency(m, n, [oldRoot, ...proof], oldRoot, newRoot));
        if (m < n) {
          expectProofError(() => verifyConsistency(m, n, proof, newRoot, oldRoot));
          const at = pick % proof.length;
          const bytes = proof.map((h, j) => (j === at ? flip(h, byte, bit) : h));
          expectProofError(() => verifyConsistency(m, n, bytes, oldRoot, newRoot));
          expectProofError(() => verifyConsistency(m, n, proof.slice(0, -1), oldRoot, newRoot));
          expectProofError(() => verifyConsistency(m, n, proof.slice(1), oldRoot, newRoot));
          if (proof.length > 1) {
            const swapped = [...proof];
            [swapped[0], swapped[swapped.length - 1]] = [swapped[swapped.length - 1]!, swapped[0]!];
            expectProofError(() => verifyConsistency(m, n, swapped, oldRoot, newRoot));
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('verifiers throw only AttestdError on arbitrary input', () => {
    const bytes = fc.oneof(fc.uint8Array({ minLength: 0, maxLength: 40 }), fc.uint8Array({ minLength: 32, maxLength: 32 }));
    const count = fc.oneof(fc.integer({ min: -3, max: 300 }), fc.double(), fc.constant(2 ** 64));
    fc.assert(
      fc.property(bytes, count, count, fc.array(bytes, { maxLength: 12 }), bytes, bytes, (a, i, n, proof, r1, r2) => {
        for (const run of [() => verifyInclusion(a, i, n, proof, r1), () => verifyConsistency(i, n, proof, r1, r2)]) {
          try {
            run();
          } catch (err) {
            expect(err).toBeInstanceOf(AttestdError);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('a 1,000,000-record log', () => {
  it('costs O(n) once, then O(log n) leaf reads per proof', () => {
    const n = 1_000_000;
    let reads = 0;
    const leafAt = (i: number): Buffer => {
      reads++;
      const b = Buffer.alloc(32);
      b.writeUInt32BE(i, 0);
      b.writeUInt32BE(i ^ 0x5a5a5a5a, 28);
      return b;
    };
    const oldSize = 765_433;
    let oldRoot: Buffer = Buffer.alloc(0);
    const range = new CompactRange();
    for (let i = 0; i < n; i++) {
      range.appendLeafHash(leafAt(i));
      if (range.size === oldSize) oldRoot = range.root();
    }
    const root = range.root();
    reads = 0;

    expect(treeRoot(leafAt, n).equals(root)).toBe(true);
    expect(reads).toBe(n);

    reads = 0;
    const indices = [0, 1, 499_999, 524_287, 524_288, 999_998, 999_999];
    for (let k = 0; k < 200; k++) indices.push((k * 7919 * 127) % n);
    let most = 0;
    for (const index of indices) {
      reads = 0;
      const proof = inclusionProof(leafAt, index, n);
      // Below the memo: siblings of 1, 2, 4 and 8 leaves, plus pieces of the one
      // non-perfect subtree, each under 16 leaves.
      most = Math.max(most, reads);
      verifyInclusion(leafAt(index), index, n, proof, root);
    }
    expect(most).toBeLessThanOrEqual(30);

    reads = 0;
    verifyConsistency(oldSize, n, consistencyProof(leafAt, oldSize, n), oldRoot, root);
    expect(reads).toBeLessThan(200);
  }, 180_000);
});
