/**
 * Every genuine TDX quote, with one random byte of its signed region flipped (the header and
 * TD report body the attestation key signs, and the QE report the PCK signs), never passes
 * the signature checks.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { appraiseTdxQuote } from '../../daemon/verify/tdx/verify.js';
import { parseTdxQuote } from '../../daemon/verify/tdx/quote.js';
import { allCollateral, SAMPLES, sampleBytes } from './tdx-helpers.js';

const SIGNATURE_CHECKS = ['quote.parse', 'quote.signature', 'qe.signature', 'qe.report_data'];

describe('flipped bytes in the signed regions of genuine TDX quotes', () => {
  const collateral = allCollateral();
  for (const { name, at: when } of SAMPLES) {
    it(`${name}: any flip fails parsing or a signature check`, () => {
      const quote = sampleBytes(name);
      const signedLen = parseTdxQuote(quote).signedBytes.length;
      // Signature data: u32 length, 64-byte signature, 64-byte key, u16 type + u32 size of the
      // certification data, then the 384-byte QE report the PCK key signs.
      const qeStart = signedLen + 4 + 64 + 64 + 2 + 4;
      // Untampered, every signature check passes: the property below is not vacuous.
      const clean = appraiseTdxQuote(quote, collateral, { at: new Date(when), acceptStaleCollateral: true });
      for (const n of SIGNATURE_CHECKS) expect(clean.checks.find((c) => c.name === n)?.status, n).toBe('pass');
      const offsets = fc.oneof(fc.integer({ min: 0, max: signedLen - 1 }), fc.integer({ min: qeStart, max: qeStart + 383 }));
      fc.assert(fc.property(offsets, fc.integer({ min: 1, max: 255 }), (offset, x) => {
        const bad = Buffer.from(quote);
        bad[offset] = bad[offset]! ^ x;
        const a = appraiseTdxQuote(bad, collateral, { at: new Date(when), acceptStaleCollateral: true });
        const failed = a.checks.filter((c) => SIGNATURE_CHECKS.includes(c.name) && c.status === 'fail');
        expect(failed.length, `flip at ${offset}`).toBeGreaterThan(0);
      }), { numRuns: 60 });
    });
  }
});
