// Decoders of untrusted bytes: whatever comes in, the only thing thrown is AttestdError.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { AttestdError } from '../../daemon/base/errors.js';
import { parseSnpReport, SNP_REPORT_SIZE } from '../../daemon/verify/snp/report.js';
import { parseAmdCertificate as parseCertificate } from '../../daemon/verify/snp/chain.js';
import { pemCertificates as pemBlocks } from '../../daemon/verify/x509/pem.js';
import { parseAmdExtensions } from '../../daemon/verify/snp/vcek-extensions.js';
import { verifySnpReport } from '../../daemon/verify/snp/verify.js';
import { inputFor, snpFixture, validSamples } from './snp-helpers.js';

function onlyAttestdError(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof AttestdError)) throw err;
  }
}

const sample = validSamples()[1];
if (!sample) throw new Error('no sample');
const CERTS = [snpFixture('trustee_milan_vcek.der'), snpFixture('virteesev_turin_vcek.der'), snpFixture('trustee_vcek_new_encoding.der'), snpFixture('trustee_milan_vlek.der')];

/** A copy of `base` with a few bytes overwritten, and sometimes cut short. */
const mutated = (base: Uint8Array): fc.Arbitrary<Uint8Array> =>
  fc.tuple(fc.array(fc.tuple(fc.nat({ max: base.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.option(fc.nat({ max: base.length })))
    .map(([edits, cut]) => {
      const c = Buffer.from(base);
      for (const [at, v] of edits) c[at] = v;
      return cut === null ? c : c.subarray(0, cut);
    });

describe('SEV-SNP decoders on hostile input', () => {
  it('parseSnpReport: random bytes of any length, and of the report size', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1300 }), (b) => onlyAttestdError(() => parseSnpReport(b))), { numRuns: 300 });
    fc.assert(fc.property(fc.uint8Array({ minLength: SNP_REPORT_SIZE, maxLength: SNP_REPORT_SIZE }), (b) => {
      b[0] = 2;
      onlyAttestdError(() => parseSnpReport(b));
    }), { numRuns: 300 });
  });

  it('parseSnpReport and verifySnpReport: mutated real reports', () => {
    fc.assert(fc.property(mutated(sample.report), (b) => {
      onlyAttestdError(() => parseSnpReport(b));
      let threw = false;
      try {
        verifySnpReport({ ...inputFor(sample), report: b });
      } catch (err) {
        if (!(err instanceof AttestdError)) throw err;
        threw = true;
      }
      // Only an edit that changed nothing may still verify.
      expect(threw || Buffer.from(b).equals(sample.report)).toBe(true);
    }), { numRuns: 150 });
  });

  it('parseCertificate and parseAmdExtensions: random and mutated DER', () => {
    const both = (b: Uint8Array): void => onlyAttestdError(() => parseAmdExtensions(parseCertificate(b).extensions));
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), both), { numRuns: 300 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
      onlyAttestdError(() => parseCertificate(Buffer.concat([Buffer.from([0x30, 0x82, b.length >> 8, b.length & 0xff]), b])));
    }), { numRuns: 300 });
    for (const cert of CERTS) fc.assert(fc.property(mutated(cert), both), { numRuns: 150 });
  });

  it('parseAmdExtensions: random extension values under the AMD OIDs', () => {
    const oids = ['1', '2', '3.1', '3.2', '3.3', '3.8', '3.9', '4', '5'].map((s) => `1.3.6.1.4.1.3704.1.${s}`);
    fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom(...oids), fc.uint8Array({ maxLength: 80 })), { maxLength: 9 }), (entries) => {
      onlyAttestdError(() => parseAmdExtensions(new Map(entries)));
    }), { numRuns: 400 });
  });

  it('pemCertificates: arbitrary text', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (s) => {
      onlyAttestdError(() => pemBlocks(`-----BEGIN CERTIFICATE-----${s}-----END CERTIFICATE-----${s}`, 'SNP_CERT_CHAIN_INVALID'));
    }), { numRuns: 200 });
  });
});
