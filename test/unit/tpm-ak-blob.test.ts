// The stored attestation key as read back from the state folder: hostile bytes. It round-trips,
// refuses every truncation, extension, wrong size and foreign public area with
// AK_STORE_UNUSABLE, and never throws anything else on arbitrary input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { decodeStoredAk, encodeStoredAk, type StoredAk } from '../../daemon/evidence/tpm/ak-blob.js';
import { akTemplate } from '../../daemon/evidence/tpm/ak-template.js';
import { TpmWriter } from '../../daemon/verify/tpm-reader.js';
import { codeOf } from './verify-helpers.js';

function publicArea(x: Buffer, y: Buffer): Buffer {
  const t = akTemplate();
  return Buffer.concat([t.subarray(0, t.length - 4), new TpmWriter().tpm2b(x).tpm2b(y).finish()]);
}

const sample: StoredAk = {
  publicArea: publicArea(Buffer.alloc(32, 1), Buffer.alloc(32, 2)),
  privateBlob: Buffer.alloc(126, 7),
  authValue: Buffer.alloc(32, 9),
};

describe('stored attestation key', () => {
  it('round-trips', () => {
    expect(decodeStoredAk(encodeStoredAk(sample))).toEqual(sample);
  });

  it('refuses every truncation and any trailing byte', () => {
    const bytes = encodeStoredAk(sample);
    for (let n = 0; n < bytes.length; n++) expect(codeOf(() => decodeStoredAk(bytes.subarray(0, n)))).toBe('AK_STORE_UNUSABLE');
    expect(codeOf(() => decodeStoredAk(Buffer.concat([bytes, Buffer.alloc(1)])))).toBe('AK_STORE_UNUSABLE');
  });

  it('refuses another magic or version, a short authValue, an empty blob, a key of another template', () => {
    const bytes = encodeStoredAk(sample);
    const flipped = (i: number) => {
      const b = Buffer.from(bytes);
      b[i] = (b[i] ?? 0) ^ 1;
      return b;
    };
    expect(codeOf(() => decodeStoredAk(flipped(0)))).toBe('AK_STORE_UNUSABLE');
    expect(codeOf(() => decodeStoredAk(flipped(7)))).toBe('AK_STORE_UNUSABLE');
    expect(codeOf(() => decodeStoredAk(encodeStoredAk({ ...sample, authValue: Buffer.alloc(16) })))).toBe('AK_STORE_UNUSABLE');
    expect(codeOf(() => decodeStoredAk(encodeStoredAk({ ...sample, privateBlob: Buffer.alloc(0) })))).toBe('AK_STORE_UNUSABLE');
    const withoutNoDa = Buffer.from(sample.publicArea);
    withoutNoDa[6] = (withoutNoDa[6] ?? 0) & ~0x04;
    expect(() => decodeStoredAk(encodeStoredAk({ ...sample, publicArea: withoutNoDa }))).toThrow(/template mismatch/);
  });

  it('decodes or throws AK_STORE_UNUSABLE on arbitrary bytes and mutations', () => {
    const valid = encodeStoredAk(sample);
    const inputs = fc.oneof(
      fc.uint8Array({ maxLength: 600 }),
      fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
        const b = Buffer.from(valid);
        b[i] = (b[i] ?? 0) ^ x;
        return b;
      }),
    );
    fc.assert(
      fc.property(inputs, (bytes) => {
        try {
          const got = decodeStoredAk(bytes);
          expect(encodeStoredAk(got).equals(Buffer.from(bytes))).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(AttestdError);
          expect((err as AttestdError).code).toBe('AK_STORE_UNUSABLE');
        }
      }),
      { numRuns: 2000 },
    );
  });
});
