import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { CompactRange, EMPTY_ROOT, leafHash, nodeHash } from '../../daemon/verify/merkle/tree.js';
import { crc32c } from '../../daemon/audit/crc32c.js';

const TESSERA = '../shared/fixtures/merkle/tessera-testlog';

/** RFC 6962 section 2.1, written directly from the definition: the reference to compare with. */
function naiveRoot(leaves: Uint8Array[]): Buffer {
  if (leaves.length === 0) return createHash('sha256').digest();
  if (leaves.length === 1) return leafHash(leaves[0]!);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(naiveRoot(leaves.slice(0, k)), naiveRoot(leaves.slice(k)));
}

/** Entries of a tessera entry bundle: u16 big-endian length, then the bytes. */
function bundleEntries(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < data.length;) {
    const n = data.readUInt16BE(off);
    out.push(data.subarray(off + 2, off + 2 + n));
    off += 2 + n;
  }
  return out;
}

describe('RFC 6962 compact range', () => {
  it('reproduces the root of every checkpoint of a real tessera test log', () => {
    for (let size = 1; size <= 15; size++) {
      const checkpoint = readFileSync(`${TESSERA}/checkpoint.${size}`, 'utf8').split('\n');
      expect(Number(checkpoint[1])).toBe(size);
      const entries = bundleEntries(readFileSync(`${TESSERA}/tile/entries/000.p/${size}`));
      expect(entries).toHaveLength(size);
      const range = new CompactRange();
      for (const e of entries) range.append(e);
      expect(range.root().toString('base64')).toBe(checkpoint[2]);
    }
  });

  it('notices a changed entry', () => {
    const checkpoint = readFileSync(`${TESSERA}/checkpoint`, 'utf8').split('\n');
    const entries = bundleEntries(readFileSync(`${TESSERA}/tile/entries/000.p/15`));
    entries[7] = Buffer.from('eighT');
    const range = new CompactRange();
    for (const e of entries) range.append(e);
    expect(range.root().toString('base64')).not.toBe(checkpoint[2]);
  });

  it('matches the naive definition for every size', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 70 }), (leaves) => {
      const range = new CompactRange();
      for (const l of leaves) range.append(l);
      expect(range.size).toBe(leaves.length);
      expect(range.root().equals(naiveRoot(leaves))).toBe(true);
    }));
  });

  it('has the empty-string hash as the empty root', () => {
    expect(new CompactRange().root().equals(EMPTY_ROOT)).toBe(true);
    expect(EMPTY_ROOT.toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
});

describe('crc32c', () => {
  it('gives the standard check value', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(32))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
  });
});
