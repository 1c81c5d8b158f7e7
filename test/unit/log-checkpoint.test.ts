import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AttestdError } from '../../daemon/base/errors.js';
import { EMPTY_ROOT, leafHash } from '../../daemon/verify/merkle/tree.js';
import { formatCheckpoint, parseCheckpoint, MAX_EXTENSION_LINES, type Checkpoint } from '../../daemon/verify/checkpoint.js';
import { consistencyProof, inclusionProof, verifyConsistency, verifyInclusion } from '../../daemon/verify/merkle/proof.js';
import { openNote, parseVerifierKey } from '../../daemon/verify/signed-note.js';
import { naiveRoot, TESSERA, tesseraCheckpoint, tesseraEntries } from './log-helpers.js';

function expectCode(fn: () => unknown, code: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(AttestdError);
  expect((thrown as AttestdError).code).toBe(code);
}

const ROOT = Buffer.from('0Nc2CrefWKseHj/mStd+LqC8B+NrX0btIiPt2SmN+ek=', 'base64');
const good = `example.com/log\n1\n${ROOT.toString('base64')}\n`;

describe('tessera test log (recorded checkpoints and entries)', () => {
  const verifier = parseVerifierKey(readFileSync(join(TESSERA, 'verifier_key.txt'), 'utf8').trim());
  const entries = tesseraEntries();
  const leaves = entries.map((e) => leafHash(e));
  const sizes = Array.from({ length: 16 }, (_, n) => n);
  const opened = sizes.map((n) => openNote(tesseraCheckpoint(n), [verifier]));
  const checkpoints = opened.map((o) => parseCheckpoint(o.body));

  it('every checkpoint is signed by the log key', () => {
    for (const o of opened) expect(o.verifiedBy).toEqual(['example.com/log/testdata']);
  });

  it('has 15 entries whose leaf hashes equal the level-0 tile', () => {
    expect(entries.length).toBe(15);
    const tile = readFileSync(join(TESSERA, 'tile', '0', '000.p', '15'));
    expect(Buffer.concat(leaves).equals(tile)).toBe(true);
  });

  it.each(sizes)('checkpoint.%i opens with the vkey, parses, and its root is the RFC 6962 root of its entries', (n) => {
    const c = checkpoints[n]!;
    expect(c.origin).toBe('example.com/log/testdata');
    expect(c.size).toBe(n);
    expect(c.extensions).toEqual([]);
    expect(c.root.equals(n === 0 ? EMPTY_ROOT : naiveRoot(leaves.slice(0, n)))).toBe(true);
    expect(formatCheckpoint(c)).toBe(openNote(tesseraCheckpoint(n), [verifier]).body);
  });

  it('"checkpoint" is the latest one, checkpoint.15', () => {
    expect(tesseraCheckpoint(undefined)).toBe(tesseraCheckpoint(15));
  });

  it('inclusion proofs for every entry verify against every checkpoint that holds it', () => {
    let checked = 0;
    for (const c of checkpoints) {
      for (let i = 0; i < c.size; i++) {
        verifyInclusion(leafHash(entries[i]!), i, c.size, inclusionProof(leaves, i, c.size), c.root);
        checked++;
      }
    }
    expect(checked).toBe(120);
  });

  it('consistency proofs verify between every pair of non-empty checkpoints, and fail reversed', () => {
    for (const a of checkpoints.slice(1)) {
      for (const b of checkpoints.slice(a.size)) {
        verifyConsistency(a.size, b.size, consistencyProof((i) => leaves[i]!, a.size, b.size), a.root, b.root);
        if (a.size < b.size) expectCode(() => verifyConsistency(a.size, b.size, consistencyProof((i) => leaves[i]!, a.size, b.size), b.root, a.root), 'MERKLE_PROOF_INVALID');
      }
    }
  });

  it('from checkpoint.0 no proof is accepted; its root is the empty root instead', () => {
    expect(checkpoints[0]!.root.equals(EMPTY_ROOT)).toBe(true);
    expectCode(() => verifyConsistency(0, 15, [], checkpoints[0]!.root, checkpoints[15]!.root), 'MERKLE_PROOF_INVALID');
  });

  it('a checkpoint with a changed size or root no longer opens', () => {
    const note = tesseraCheckpoint(7);
    expectCode(() => openNote(note.replace('\n7\n', '\n8\n'), [verifier]), 'NOTE_SIGNATURE_INVALID');
    expectCode(() => openNote(note.replace(checkpoints[7]!.root.toString('base64'), checkpoints[8]!.root.toString('base64')), [verifier]), 'NOTE_SIGNATURE_INVALID');
  });
});

describe('parseCheckpoint', () => {
  it('parses the three lines and extension lines', () => {
    expect(parseCheckpoint(good)).toEqual({ origin: 'example.com/log', size: 1, root: ROOT, extensions: [] });
    expect(parseCheckpoint(`${good}ext one\n— not a signature\n`).extensions).toEqual(['ext one', '— not a signature']);
    expect(parseCheckpoint(`o\n0\n${EMPTY_ROOT.toString('base64')}\n`).size).toBe(0);
    expect(parseCheckpoint(`o\n9007199254740991\n${ROOT.toString('base64')}\n`).size).toBe(2 ** 53 - 1);
  });

  const r = ROOT.toString('base64');
  const bad: [string, string][] = [
    ['empty', ''],
    ['no final newline', good.slice(0, -1)],
    ['two lines', `o\n1\n`],
    ['empty origin', `\n1\n${r}\n`],
    ['leading zero', `o\n01\n${r}\n`],
    ['double zero', `o\n00\n${r}\n`],
    ['signed size', `o\n+1\n${r}\n`],
    ['negative size', `o\n-1\n${r}\n`],
    ['size with space', `o\n1 \n${r}\n`],
    ['hex size', `o\n0x1\n${r}\n`],
    ['empty size', `o\n\n${r}\n`],
    ['size above 2^53 - 1', `o\n9007199254740992\n${r}\n`],
    ['uint64 max size', `o\n18446744073709551615\n${r}\n`],
    ['root of 31 bytes', `o\n1\n${ROOT.subarray(1).toString('base64')}\n`],
    ['root of 33 bytes', `o\n1\n${Buffer.concat([ROOT, Buffer.from([0])]).toString('base64')}\n`],
    ['root without padding', `o\n1\n${r.replace(/=+$/, '')}\n`],
    ['root in base64url', `o\n1\n${ROOT.toString('base64url')}=\n`],
    ['root with non-zero padding bits', `o\n1\n${r.slice(0, -2)}f=\n`],
    ['root with a space', `o\n1\n ${r}\n`],
    ['empty extension line', `${good}\n`],
    ['empty extension between others', `${good}a\n\nb\n`],
    ['CRLF', good.replace(/\n/g, '\r\n')],
    ['tab in origin', `o\to\n1\n${r}\n`],
    ['NUL in extension', `${good}a\u0000\n`],
    ['lone surrogate', `o\ud800\n1\n${r}\n`],
    ['too many extension lines', good + 'x\n'.repeat(MAX_EXTENSION_LINES + 1)],
  ];
  it.each(bad)('refuses %s', (_name, body) => {
    expectCode(() => parseCheckpoint(body), 'CHECKPOINT_MALFORMED');
  });

  it('accepts the maximum number of extension lines', () => {
    expect(parseCheckpoint(good + 'x\n'.repeat(MAX_EXTENSION_LINES)).extensions.length).toBe(MAX_EXTENSION_LINES);
  });

  it('throws only CHECKPOINT_MALFORMED on arbitrary and mutated input', () => {
    const arbitrary = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.string({ unit: fc.constantFrom('0', '1', '9', '\n', 'a', '=', '+', '/', 'A', ' ', '\r'), maxLength: 80 }),
      fc.tuple(fc.nat(good.length), fc.string({ unit: 'binary', maxLength: 3 }), fc.nat(3)).map(([at, ins, del]) => good.slice(0, at) + ins + good.slice(at + del)),
    );
    fc.assert(
      fc.property(arbitrary, (body) => {
        try {
          const c = parseCheckpoint(body);
          // Whatever parses is canonical: formatting gives back the same bytes.
          expect(formatCheckpoint(c)).toBe(body);
        } catch (err) {
          expect(err).toBeInstanceOf(AttestdError);
          expect((err as AttestdError).code).toBe('CHECKPOINT_MALFORMED');
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('formatCheckpoint', () => {
  const line = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }).filter((s) => ![...s].some((ch) => ch.charCodeAt(0) < 0x20));
  const checkpoint: fc.Arbitrary<Checkpoint> = fc.record({
    origin: line,
    size: fc.maxSafeNat(),
    root: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b)),
    extensions: fc.array(line, { maxLength: 4 }),
  });

  it('round-trips through parseCheckpoint', () => {
    fc.assert(
      fc.property(checkpoint, (c) => {
        expect(parseCheckpoint(formatCheckpoint(c))).toEqual(c);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses what could not be parsed back', () => {
    const base: Checkpoint = { origin: 'o', size: 1, root: ROOT, extensions: [] };
    const bad: Checkpoint[] = [
      { ...base, origin: '' },
      { ...base, origin: 'a\nb' },
      { ...base, size: -1 },
      { ...base, size: 1.5 },
      { ...base, size: 2 ** 53 },
      { ...base, root: ROOT.subarray(1) },
      { ...base, extensions: [''] },
      { ...base, extensions: ['a\nb'] },
      { ...base, extensions: ['a\r'] },
    ];
    for (const c of bad) expectCode(() => formatCheckpoint(c), 'INVALID_ARGUMENT');
  });
});
