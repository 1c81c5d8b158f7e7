import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { AttestdError } from '../../daemon/base/errors.js';
import { pickCollateral } from '../../daemon/verify/tdx/collateral.js';
import { topLevelSpan } from '../../daemon/verify/tdx/signed-json.js';
import { allCollateral, tdxFixture } from './tdx-helpers.js';

describe('TDX collateral picker', () => {
  it('sorts the fixture folder by content, whatever the file names', () => {
    const files = allCollateral().map((f, i) => ({ name: `file${i}`, bytes: f.bytes }));
    const c = pickCollateral(files, Buffer.from('50806f000000', 'hex'), new Date('2023-06-20T00:00:00Z'));
    expect(c.tcbInfo?.info.fmspc.toString('hex')).toBe('50806f000000');
    expect(c.qeIdentity?.identity.issueDate.toISOString()).toBe('2023-06-08T07:24:59.000Z');
    expect(c.crls.map((x) => x.crl.issuerCn).sort()).toEqual(['Intel SGX PCK Platform CA', 'Intel SGX Root CA']);
    expect(c.tcbSigningCerts.length).toBeGreaterThan(0);
    expect(c.tcbSigningCerts.every((x) => x.cert.subjectCn === 'Intel SGX TCB Signing')).toBe(true);
  });

  it('prefers the most recent QE identity issued by the verification time', () => {
    const files = allCollateral();
    expect(pickCollateral(files, undefined, new Date('2025-11-01T00:00:00Z')).qeIdentity?.name).toBe('trustee_qe_identity_td_qe.json');
    expect(pickCollateral(files, undefined, new Date('2023-06-20T00:00:00Z')).qeIdentity?.name).toBe('gotdxguest_qe_identity_td_qe.json');
  });

  it('keeps only TCB info for the FMSPC asked for', () => {
    const c = pickCollateral(allCollateral(), Buffer.from('00806f050000', 'hex'));
    expect(c.tcbInfo).toBeUndefined();
    expect(c.ignored.filter((i) => /TCB info for FMSPC/.test(i.reason))).toHaveLength(3);
  });

  it('ignores files that are not collateral, with a reason', () => {
    const c = pickCollateral([
      { name: 'quote', bytes: tdxFixture('gotdxguest_quote_v4_SPR_E4.dat') },
      { name: 'claims', bytes: tdxFixture('trustee_parse_tdx_claims_expected.json') },
      { name: 'bad-der', bytes: Buffer.from([0x30, 0x03, 0x02, 0x01]) },
    ]);
    expect(c.ignored.map((i) => i.name)).toEqual(['quote', 'claims', 'bad-der']);
  });

  it('cuts the exact signed span from the raw JSON', () => {
    const text = '{"a":[1,{"tcbInfo":2}], "tcbInfo" : {"x":"}\\"{","y":[{}]},"signature":"00"}';
    const span = topLevelSpan(text, 'tcbInfo')!;
    expect(text.slice(span[0], span[1])).toBe('{"x":"}\\"{","y":[{}]}');
    expect(topLevelSpan('{"other":{}}', 'tcbInfo')).toBeUndefined();
  });

  it('throws only AttestdError on random and mutated files', () => {
    const seeds = allCollateral().map((f) => Buffer.from(f.bytes));
    fc.assert(fc.property(
      fc.array(fc.oneof(
        fc.uint8Array({ maxLength: 512 }),
        fc.tuple(fc.nat(seeds.length - 1), fc.array(fc.tuple(fc.nat(4095), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(5000)).map(([i, edits, cut]) => {
          const m = Buffer.from(seeds[i]!);
          for (const [o, v] of edits) if (o < m.length) m[o] = v;
          return m.subarray(0, Math.max(cut, 1));
        }),
      ), { maxLength: 6 }),
      (list) => {
        try {
          pickCollateral(list.map((bytes, i) => ({ name: `f${i}`, bytes })), Buffer.from('50806f000000', 'hex'));
        } catch (err) {
          if (!(err instanceof AttestdError)) throw err;
        }
      },
    ), { numRuns: 300 });
  });
});
