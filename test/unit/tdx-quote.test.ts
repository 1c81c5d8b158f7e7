import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { AttestdError } from '../../daemon/base/errors.js';
import { parseTdxQuote } from '../../daemon/verify/tdx/quote.js';
import { SAMPLES, sampleBytes, tdxFixture, withByte } from './tdx-helpers.js';

const expectCode = (fn: () => unknown, code: string): void => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AttestdError);
    expect((err as AttestdError).code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}`);
};

describe('TDX quote parser', () => {
  it.each(SAMPLES)('parses $name', ({ name }) => {
    const q = parseTdxQuote(sampleBytes(name));
    expect(q.header.teeType).toBe(0x81);
    expect(q.pckChainPem.match(/BEGIN CERTIFICATE/g)).toHaveLength(3);
    expect(q.qeAuthData).toHaveLength(32);
    expect(q.body.rtmrs.every((r) => r.length === 48)).toBe(true);
  });

  it('matches the trustee golden claims for trustee_quote_v4_fmspc50806f', () => {
    const golden = JSON.parse(tdxFixture('trustee_parse_tdx_claims_expected.json').toString('utf8')) as {
      quote: { body: Record<string, string>; header: Record<string, string> };
    };
    const q = parseTdxQuote(tdxFixture('trustee_quote_v4_fmspc50806f.dat'));
    const b = golden.quote.body;
    expect(q.body.mrTd.toString('hex')).toBe(b.mr_td);
    expect(q.body.mrSeam.toString('hex')).toBe(b.mr_seam);
    expect(q.body.rtmrs.map((r) => r.toString('hex'))).toEqual([b.rtmr_0, b.rtmr_1, b.rtmr_2, b.rtmr_3]);
    expect(q.body.reportData.toString('hex')).toBe(b.report_data);
    expect(q.body.teeTcbSvn.toString('hex')).toBe(b.tcb_svn);
    expect(q.body.tdAttributes.toString('hex')).toBe(b.td_attributes);
    expect(q.body.xfam.toString('hex')).toBe(b.xfam);
    expect(q.header.userData.toString('hex')).toBe(golden.quote.header.user_data);
  });

  it('parses a v5 quote with a TD report 1.5 body', () => {
    const q = parseTdxQuote(tdxFixture('gotdxguest_quote_v5_tdx15.dat'));
    expect(q.header.version).toBe(5);
    expect(q.body.bodyType).toBe(3);
    expect(q.body.teeTcbSvn2).toHaveLength(16);
    expect(q.body.mrServiceTd).toHaveLength(48);
    expect(q.signedBytes).toHaveLength(48 + 6 + 648);
    expect(q.trailingBytes).toBe(0);
  });

  it('counts the bytes after the signature data of SPR_E4 without signing them', () => {
    const q = parseTdxQuote(tdxFixture('gotdxguest_quote_v4_SPR_E4.dat'));
    expect(q.signedBytes).toHaveLength(632);
    expect(q.trailingBytes).toBe(39);
  });

  it('rejects the SGX quote (TEE type 0)', () => {
    expectCode(() => parseTdxQuote(tdxFixture('trustee_sgx_quote_v3_occlum.dat')), 'CVM_REPORT_MALFORMED');
  });

  it('rejects version 3 (recipe 0x00=3) and a wrong signature data length (recipe 0x278=0x10)', () => {
    const q = tdxFixture('gotdxguest_quote_v4_SPR_E4.dat');
    expectCode(() => parseTdxQuote(withByte(q, 0x00, 3)), 'CVM_REPORT_MALFORMED');
    expectCode(() => parseTdxQuote(withByte(q, 0x278, 0x10)), 'CVM_REPORT_MALFORMED');
  });

  it('rejects a wrong key type, v5 body type and certification data type', () => {
    const v4 = tdxFixture('gotdxguest_quote_v4_SPR_E4.dat');
    expectCode(() => parseTdxQuote(withByte(v4, 2, 3)), 'CVM_REPORT_MALFORMED');
    expectCode(() => parseTdxQuote(withByte(v4, 636 + 128, 5)), 'CVM_REPORT_MALFORMED');
    const v5 = tdxFixture('gotdxguest_quote_v5_tdx15.dat');
    expectCode(() => parseTdxQuote(withByte(v5, 48, 9)), 'CVM_REPORT_MALFORMED');
    expectCode(() => parseTdxQuote(withByte(v5, 50, 0)), 'CVM_REPORT_MALFORMED');
  });

  it('rejects every truncation', () => {
    const q = tdxFixture('trustee_quote_v4_fmspc50806f.dat');
    for (const n of [0, 10, 47, 48, 631, 632, 700, 1100, 4935]) expectCode(() => parseTdxQuote(q.subarray(0, n)), 'CVM_REPORT_MALFORMED');
  });

  it('throws only AttestdError on random input', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
      try {
        parseTdxQuote(bytes);
      } catch (err) {
        if (!(err instanceof AttestdError)) throw err;
      }
    }), { numRuns: 300 });
  });

  it('throws only AttestdError on mutated quotes', () => {
    const base = tdxFixture('gotdxguest_quote_v5_tdx15.dat');
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat(base.length), (edits, cut) => {
      const m = Buffer.from(base);
      for (const [i, v] of edits) m[i] = v;
      try {
        parseTdxQuote(m.subarray(0, Math.max(cut, 600)));
      } catch (err) {
        if (!(err instanceof AttestdError)) throw err;
      }
    }), { numRuns: 300 });
  });
});
