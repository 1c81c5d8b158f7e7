import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AttestdError } from '../../daemon/base/errors.js';
import { decodeIntent, encodeIntent, intentDigest, type ResolvedIntent } from '../../daemon/verify/intent/codec.js';

const digest = (b: number): Buffer => Buffer.alloc(32, b);

const SAMPLE: ResolvedIntent = {
  artifacts: [
    { name: 'weights', path: '/models/w.safetensors', sha256: digest(1), measured: true },
    { name: 'config', sha256: digest(2), measured: false },
  ],
  imageDigest: `sha256:${'ab'.repeat(32)}`,
  cmdline: ['python3', 'train.py', '--lr', '0.1'],
  jobId: 'job-42',
  labels: [['team', 'ml'], ['env', 'prod']],
};

const text = (max: number) => fc.string({ maxLength: max, unit: 'grapheme-ascii' });
const arbIntent: fc.Arbitrary<ResolvedIntent> = fc.record({
  artifacts: fc.uniqueArray(fc.record({
    name: fc.string({ minLength: 1, maxLength: 20, unit: 'grapheme-ascii' }),
    measured: fc.boolean(),
    path: fc.string({ maxLength: 30, unit: 'grapheme-ascii' }).map((p) => `/${p}`),
    sha256: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((u) => Buffer.from(u)),
  }).map((a) => (a.measured ? a : { name: a.name, sha256: a.sha256, measured: false })), { maxLength: 8, selector: (a) => a.name }),
  imageDigest: fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }), { nil: undefined })
    .map((u) => (u ? `sha256:${Buffer.from(u).toString('hex')}` : '')),
  cmdline: fc.array(fc.string({ maxLength: 20 }), { maxLength: 6 }),
  jobId: text(40),
  labels: fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 10, unit: 'grapheme-ascii' }), text(30)), { maxLength: 16, selector: (l) => l[0] }),
});

describe('execution intent encoding', () => {
  it('round-trips in canonical order, and the order of the input does not change the digest', () => {
    const enc = encodeIntent(SAMPLE);
    const back = decodeIntent(enc);
    expect(back.artifacts.map((a) => a.name)).toEqual(['config', 'weights']);
    expect(back.labels).toEqual([['env', 'prod'], ['team', 'ml']]);
    expect(back.cmdline).toEqual(SAMPLE.cmdline);
    const shuffled = { ...SAMPLE, artifacts: [...SAMPLE.artifacts].reverse(), labels: [...SAMPLE.labels].reverse() };
    expect(intentDigest(encodeIntent(shuffled))).toEqual(intentDigest(enc));
  });

  it('is domain-separated: the digest is not the bare SHA-256 of the encoding', async () => {
    const { createHash } = await import('node:crypto');
    const enc = encodeIntent(SAMPLE);
    expect(intentDigest(enc)).not.toEqual(createHash('sha256').update(enc).digest());
  });

  it('gives a different digest for any change of a field', () => {
    const base = intentDigest(encodeIntent(SAMPLE));
    const variants: ResolvedIntent[] = [
      { ...SAMPLE, artifacts: [{ ...SAMPLE.artifacts[0]!, sha256: digest(9) }, SAMPLE.artifacts[1]!] },
      { ...SAMPLE, artifacts: [{ ...SAMPLE.artifacts[0]! }, { ...SAMPLE.artifacts[1]!, name: 'cfg' }] },
      { ...SAMPLE, cmdline: ['python3', 'train.py', '--lr', '0.2'] },
      { ...SAMPLE, cmdline: ['python3', 'train.py', '--lr0.1'] },
      { ...SAMPLE, jobId: 'job-43' },
      { ...SAMPLE, imageDigest: '' },
      { ...SAMPLE, labels: [['team', 'ml']] },
    ];
    for (const v of variants) expect(intentDigest(encodeIntent(v))).not.toEqual(base);
  });

  it('refuses out-of-bounds values with INTENT_MALFORMED', () => {
    const bad: ResolvedIntent[] = [
      { ...SAMPLE, imageDigest: 'sha256:AB' },
      { ...SAMPLE, labels: Array.from({ length: 17 }, (_, i): [string, string] => [`k${String(i).padStart(2, '0')}`, 'v']) },
      { ...SAMPLE, labels: [['k'.repeat(65), 'v']] },
      { ...SAMPLE, labels: [['k', 'v'.repeat(257)]] },
      { ...SAMPLE, artifacts: [{ name: 'a', path: 'relative', sha256: digest(1), measured: true }] },
      { ...SAMPLE, artifacts: [{ name: 'a', sha256: digest(1), measured: true }] },
      { ...SAMPLE, artifacts: [{ name: 'a', sha256: digest(1), measured: false }, { name: 'a', sha256: digest(2), measured: false }] },
      { ...SAMPLE, jobId: 'job\n' },
    ];
    for (const b of bad) expect(() => encodeIntent(b)).toThrow(expect.objectContaining({ code: 'INTENT_MALFORMED' }));
  });

  it('refuses a non-canonical, truncated or extended encoding', () => {
    const enc = encodeIntent(SAMPLE);
    expect(() => decodeIntent(Buffer.concat([enc, Buffer.from([0])]))).toThrow(expect.objectContaining({ code: 'INTENT_MALFORMED' }));
    expect(() => decodeIntent(enc.subarray(0, enc.length - 1))).toThrow(expect.objectContaining({ code: 'INTENT_MALFORMED' }));
    const v2 = Buffer.from(enc);
    v2[0] = 2;
    expect(() => decodeIntent(v2)).toThrow(/version/);
    // Swap the two artifacts: same values, not in canonical order.
    const one = encodeIntent({ ...SAMPLE, artifacts: [SAMPLE.artifacts[1]!] });
    const two = encodeIntent({ ...SAMPLE, artifacts: [SAMPLE.artifacts[0]!] });
    const recA = one.subarray(2, one.indexOf(Buffer.from('sha256:')) - 1);
    const recB = two.subarray(2, two.indexOf(Buffer.from('sha256:')) - 1);
    const swapped = Buffer.concat([enc.subarray(0, 2), recB, recA, enc.subarray(2 + recA.length + recB.length)]);
    expect(swapped.length).toBe(enc.length);
    expect(() => decodeIntent(swapped)).toThrow(/canonical/);
    expect(() => decodeIntent(Buffer.alloc(600 * 1024))).toThrow(expect.objectContaining({ code: 'INTENT_MALFORMED' }));
  });

  it('property: every intent within bounds round-trips and re-encodes to the same bytes', () => {
    fc.assert(fc.property(arbIntent, (i) => {
      const enc = encodeIntent(i);
      expect(encodeIntent(decodeIntent(enc)).equals(enc)).toBe(true);
    }), { numRuns: 300 });
  });

  it('property: arbitrary or mutated bytes decode to a canonical intent or fail with INTENT_MALFORMED only', () => {
    const mutated = fc.tuple(arbIntent, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([i, at, b]) => {
      const enc = Buffer.from(encodeIntent(i));
      enc[at % enc.length] = b;
      return enc;
    });
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 256 }), mutated), (bytes) => {
      try {
        const got = decodeIntent(bytes);
        expect(encodeIntent(got).equals(Buffer.from(bytes))).toBe(true);
      } catch (err) {
        expect(err).toBeInstanceOf(AttestdError);
        expect((err as AttestdError).code).toBe('INTENT_MALFORMED');
      }
    }), { numRuns: 1000 });
  });
});
