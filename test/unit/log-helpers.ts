// Shared by the log-*.test.ts files: a naive RFC 6962 reference (straight from the
// recursive definitions, no shortcuts) and readers for the recorded transparency-log
// fixtures (see shared/fixtures/SOURCES.md, merkle/ rows).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EMPTY_ROOT, leafHash, nodeHash } from '../../daemon/verify/merkle/tree.js';

export const MERKLE_FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures', 'merkle');

function largestPowerBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH(D[n]) of RFC 6962 section 2.1. */
export function naiveRoot(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leaves[0]!;
  const k = largestPowerBelow(leaves.length);
  return nodeHash(naiveRoot(leaves.slice(0, k)), naiveRoot(leaves.slice(k)));
}

/** PATH(m, D[n]) of RFC 6962 section 2.1.1. */
export function naivePath(m: number, leaves: Buffer[]): Buffer[] {
  if (leaves.length <= 1) return [];
  const k = largestPowerBelow(leaves.length);
  return m < k
    ? [...naivePath(m, leaves.slice(0, k)), naiveRoot(leaves.slice(k))]
    : [...naivePath(m - k, leaves.slice(k)), naiveRoot(leaves.slice(0, k))];
}

/** PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 6962 section 2.1.2. */
export function naiveConsistency(m: number, leaves: Buffer[], complete = true): Buffer[] {
  if (m === leaves.length) return complete ? [] : [naiveRoot(leaves)];
  const k = largestPowerBelow(leaves.length);
  return m <= k
    ? [...naiveConsistency(m, leaves.slice(0, k), complete), naiveRoot(leaves.slice(k))]
    : [...naiveConsistency(m - k, leaves.slice(k), false), naiveRoot(leaves.slice(0, k))];
}

/** n distinct leaf hashes. */
export function makeLeaves(n: number, seed = 0): Buffer[] {
  return Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`leaf ${seed} ${i}`)));
}

export interface VectorFile {
  name: string;
  json: Record<string, unknown>;
}

/** Every JSON vector under transparency-dev-merkle/<kind>, named by its relative path. */
export function merkleVectors(kind: 'inclusion' | 'consistency'): VectorFile[] {
  const root = join(MERKLE_FIXTURES, 'transparency-dev-merkle', kind);
  const out: VectorFile[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir).sort()) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (entry.endsWith('.json')) out.push({ name: relative(root, path), json: JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown> });
    }
  };
  walk(root);
  return out;
}

export const TESSERA = join(MERKLE_FIXTURES, 'tessera-testlog');

/** Entries of the tessera test log: a bundle is a run of (u16 BE length, bytes). */
export function tesseraEntries(): Buffer[] {
  const bundle = readFileSync(join(TESSERA, 'tile', 'entries', '000.p', '15'));
  const entries: Buffer[] = [];
  let off = 0;
  while (off < bundle.length) {
    if (off + 2 > bundle.length) throw new Error('truncated entry length');
    const len = bundle.readUInt16BE(off);
    if (off + 2 + len > bundle.length) throw new Error('truncated entry');
    entries.push(bundle.subarray(off + 2, off + 2 + len));
    off += 2 + len;
  }
  return entries;
}

export function tesseraCheckpoint(n: number | undefined): string {
  return readFileSync(join(TESSERA, n === undefined ? 'checkpoint' : `checkpoint.${n}`), 'utf8');
}
