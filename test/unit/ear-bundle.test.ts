// The evidence bundle of an attestation result, read on a relying party's machine: hostile
// input. It round-trips, and every malformed or mutated bundle is refused with RESULT_INVALID.
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { decodeBundle, encodeBundle, type ResultBundle } from '../../daemon/verify/ear/bundle.js';
import { codeOf } from './verify-helpers.js';

const bundle: ResultBundle = {
  ear: 'eyJhbGciOiJFZERTQSJ9.eyJpYXQiOjF9.c2ln',
  sessionPublicKey: randomBytes(32),
  nonce: randomBytes(16),
  quote: { attest: randomBytes(120), signature: randomBytes(72), akPublic: randomBytes(88),
    banks: [{ alg: 'sha256', values: new Map([[0, randomBytes(32)], [16, randomBytes(32)]]) }] },
  akCertificate: randomBytes(500),
  ekCertificates: [randomBytes(900)],
};

describe('the result bundle', () => {
  it('round-trips', () => {
    expect(decodeBundle(encodeBundle(bundle))).toEqual(bundle);
  });

  it('refuses unknown fields, bad lengths, bad PCR indices and another kind of file', () => {
    const o = JSON.parse(encodeBundle(bundle)) as Record<string, unknown>;
    const refused = (v: unknown) => codeOf(() => decodeBundle(JSON.stringify(v)));
    expect(refused({ ...o, extra: 1 })).toBe('RESULT_INVALID');
    expect(refused({ ...o, attestd_result: 'bundle/v2' })).toBe('RESULT_INVALID');
    expect(refused({ ...o, session_public_key: Buffer.alloc(31).toString('base64') })).toBe('RESULT_INVALID');
    expect(refused({ ...o, nonce: Buffer.alloc(4).toString('base64') })).toBe('RESULT_INVALID');
    expect(refused({ ...o, ear: 'not a jws' })).toBe('RESULT_INVALID');
    const q = o.quote as Record<string, unknown>;
    expect(refused({ ...o, quote: { ...q, pcrs: [{ alg: 'sha256', values: { 24: '00'.repeat(32) } }] } })).toBe('RESULT_INVALID');
    expect(refused({ ...o, quote: { ...q, pcrs: [{ alg: 'md5', values: {} }] } })).toBe('RESULT_INVALID');
    expect(codeOf(() => decodeBundle('x'.repeat(300 * 1024)))).toBe('RESULT_INVALID');
  });

  it('decodes or throws RESULT_INVALID on arbitrary bytes and mutated bundles', () => {
    const valid = Buffer.from(encodeBundle(bundle));
    const inputs = fc.oneof(
      fc.uint8Array({ maxLength: 500 }),
      fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
        const b = Buffer.from(valid);
        b[i] = (b[i] ?? 0) ^ x;
        return b;
      }),
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify({ attestd_result: 'bundle/v1', quote: v }))),
    );
    fc.assert(fc.property(inputs, (bytes) => {
      try {
        decodeBundle(bytes);
      } catch (err) {
        expect(err).toBeInstanceOf(AttestdError);
        expect((err as AttestdError).code).toBe('RESULT_INVALID');
      }
    }), { numRuns: 1500 });
  });
});
