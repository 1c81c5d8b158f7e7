// Property tests for the decoders of untrusted TPM bytes: on random input and on mutated or
// truncated recorded quotes, the only thing any of them may throw is an AttestdError.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { encodePcrSelection, parsePcrSelection, type PcrSelection } from '../../daemon/verify/pcr.js';
import { verifyQuote } from '../../daemon/verify/quote.js';
import { parseQuoteAttest } from '../../daemon/verify/tpm-attest.js';
import { parseTpm2bPublic, parseTpmtPublic } from '../../daemon/verify/tpm-public.js';
import { parseTpmtSignature } from '../../daemon/verify/tpm-signature.js';
import { GCE_BANKS, gceQuote } from './verify-helpers.js';

const RUNS = { numRuns: 300 };

function onlyAttestdErrors(fn: () => unknown): boolean {
  try {
    fn();
  } catch (err) {
    if (err instanceof AttestdError) return true;
    throw err;
  }
  return true;
}

const QUOTE = gceQuote('nonce9009', 'sha256');
const AK = parseTpmtPublic(QUOTE.akPublic);

/** A recorded structure with a few bytes overwritten, then maybe cut short or extended. */
function mutated(base: Buffer) {
  return fc
    .record({
      edits: fc.array(fc.tuple(fc.nat({ max: base.length - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      cut: fc.option(fc.nat({ max: base.length }), { nil: undefined }),
      tail: fc.uint8Array({ maxLength: 8 }),
    })
    .map(({ edits, cut, tail }) => {
      const out = Buffer.from(base);
      for (const [at, value] of edits) out[at] = value;
      return Buffer.concat([out.subarray(0, cut ?? out.length), tail]);
    });
}

describe('decoders on random bytes', () => {
  it('parseQuoteAttest, parseTpmtPublic, parseTpm2bPublic, parseTpmtSignature, parsePcrSelection', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) =>
        [parseQuoteAttest, parseTpmtPublic, parseTpm2bPublic, parseTpmtSignature, parsePcrSelection].every((parse) =>
          onlyAttestdErrors(() => parse(bytes)),
        ),
      ),
      RUNS,
    );
  });

  it('parseQuoteAttest on bytes that start like a quote', () => {
    const prefix = Buffer.from('ff5443478018', 'hex');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (rest) =>
        onlyAttestdErrors(() => parseQuoteAttest(Buffer.concat([prefix, rest]))),
      ),
      RUNS,
    );
  });

  it('verifyQuote', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), (attest, signature) =>
        onlyAttestdErrors(() => verifyQuote({ attest, signature, pcrs: QUOTE.pcrs, ak: AK, expectedNonce: QUOTE.nonce })),
      ),
      RUNS,
    );
  });
});

describe('decoders on mutated recorded structures', () => {
  it('parseQuoteAttest', () => {
    fc.assert(fc.property(mutated(QUOTE.attest), (b) => onlyAttestdErrors(() => parseQuoteAttest(b))), RUNS);
  });

  it('parseTpmtPublic', () => {
    fc.assert(fc.property(mutated(QUOTE.akPublic), (b) => onlyAttestdErrors(() => parseTpmtPublic(b))), RUNS);
  });

  it('parseTpmtSignature', () => {
    fc.assert(fc.property(mutated(QUOTE.signature), (b) => onlyAttestdErrors(() => parseTpmtSignature(b))), RUNS);
  });

  it('verifyQuote never accepts a changed attest or signature', () => {
    const quotes = GCE_BANKS.map((bank) => gceQuote('nonce9009', bank));
    const cases = fc.oneof(
      ...quotes.flatMap((q) => [
        mutated(q.attest).map((attest) => ({ q, attest, signature: q.signature })),
        mutated(q.signature).map((signature) => ({ q, attest: q.attest, signature })),
      ]),
    );
    fc.assert(
      fc.property(cases, ({ q, attest, signature }) => {
        let accepted = false;
        onlyAttestdErrors(() => {
          verifyQuote({ attest, signature, pcrs: q.pcrs, ak: AK, expectedNonce: q.nonce });
          accepted = true;
        });
        // A mutation that happened to change nothing must still verify; any real change must not.
        expect(accepted).toBe(attest.equals(q.attest) && signature.equals(q.signature));
      }),
      RUNS,
    );
  });
});

describe('PCR selection round trip', () => {
  const selection: fc.Arbitrary<PcrSelection[]> = fc.uniqueArray(
    fc.record({
      alg: fc.constantFrom('sha1' as const, 'sha256' as const, 'sha384' as const, 'sha512' as const),
      pcrs: fc.uniqueArray(fc.integer({ min: 0, max: 31 }), { maxLength: 32 }).map((a) => a.sort((x, y) => x - y)),
    }),
    { selector: (s) => s.alg, maxLength: 4 },
  );

  it('parse(encode(s)) equals s', () => {
    fc.assert(
      fc.property(selection, (s) => {
        expect(parsePcrSelection(encodePcrSelection(s))).toEqual(s);
      }),
      RUNS,
    );
  });
});
