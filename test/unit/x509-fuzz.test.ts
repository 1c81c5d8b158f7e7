// Property tests of the shared X.509 module on hostile bytes: random input, random DER-shaped
// trees, and real certificates and CRLs (shared/fixtures) with bytes overwritten, inserted,
// removed or cut. Whatever comes in, the only thing thrown is an AttestdError carrying the code
// the caller passed, every input is answered quickly, and a changed certificate never verifies.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestdError, type ErrorCode } from '../../daemon/base/errors.js';
import { Asn1Reader } from '../../daemon/verify/x509/asn1.js';
import { parseCertificate } from '../../daemon/verify/x509/certificate.js';
import { signedBy } from '../../daemon/verify/x509/chain.js';
import { crlSignedBy, parseCrl } from '../../daemon/verify/x509/crl.js';
import { pemBlocks, pemCertificates } from '../../daemon/verify/x509/pem.js';

const FIXTURES = join(import.meta.dirname, '../../../shared/fixtures');
const fixture = (path: string): Buffer => readFileSync(join(FIXTURES, path));
const pem = (path: string): Buffer[] => pemCertificates(fixture(path), 'INVALID_ARGUMENT', { max: 16 });

const [amdAsk, amdArk] = pem('sev-snp/amd_ask_ark_milan.pem') as [Buffer, Buffer];
const vcek = fixture('sev-snp/trustee_milan_vcek.der');
const [pckPlatformCa, intelRoot] = pem('tdx/intel_pck_platform_ca_chain.pem') as [Buffer, Buffer];
const [nvidiaLeaf, nvidiaBrom] = pem('nvidia/attestation/nvtrust_h100_device_cert_chain.pem') as [Buffer, Buffer];
const gceLeaf = fixture('tpm/gce_cos85_nonce9009_ak_cert.der');
const gceIntermediate = fixture('tpm/gce_tpm_ek_intermediate_2.crt');
const rootCrl = fixture('tdx/gotdxguest_intel_sgx_root_crl.der');
const platformCrl = fixture('tdx/gotdxguest_pck_platform_crl.der');

const CODES: ErrorCode[] = ['SNP_CERT_CHAIN_INVALID', 'TDX_CERT_CHAIN_INVALID', 'TDX_COLLATERAL_INVALID', 'GPU_CERT_CHAIN_INVALID', 'EK_CERT_INVALID', 'RIM_INVALID'];
/** Far above any single parse (a few milliseconds), far below anything that could be called a hang. */
const MAX_MS = 2000;

/**
 * Runs `fn`, which must return or throw an AttestdError with `code`, within MAX_MS. Returns
 * whether it returned.
 */
function answers(code: ErrorCode, fn: () => unknown): boolean {
  const start = performance.now();
  try {
    fn();
    return true;
  } catch (err) {
    if (!(err instanceof AttestdError)) throw err;
    expect(err.code).toBe(code);
    return false;
  } finally {
    expect(performance.now() - start).toBeLessThan(MAX_MS);
  }
}

/** A copy of `base` with bytes overwritten, inserted or removed, and sometimes cut short. */
const mutated = (base: Buffer): fc.Arbitrary<Buffer> =>
  fc.tuple(
    fc.array(fc.tuple(fc.constantFrom('set', 'insert', 'delete'), fc.nat({ max: base.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
    fc.option(fc.nat({ max: base.length })),
  ).map(([edits, cut]) => {
    let c = Buffer.from(base);
    for (const [kind, at, v] of edits) {
      const i = Math.min(at, c.length);
      if (kind === 'set' && i < c.length) c[i] = v;
      else if (kind === 'insert') c = Buffer.concat([c.subarray(0, i), Buffer.from([v]), c.subarray(i)]);
      else c = Buffer.concat([c.subarray(0, i), c.subarray(i + 1 + (v & 7))]);
    }
    return cut === null ? c : c.subarray(0, cut);
  });

/** DER-shaped trees: what gets past the outer framing and into the schema. */
const tlv = (tag: number, content: Buffer): Buffer => {
  const n = content.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), content]);
};
const { tree } = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.tuple(fc.constantFrom(0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x13, 0x16, 0x17, 0x18, 0x80, 0x81, 0x82), fc.uint8Array({ maxLength: 12 }))
      .map(([tag, b]) => tlv(tag, Buffer.from(b))),
    fc.constantFrom(
      Buffer.from('06092a864886f70d01010b', 'hex'), Buffer.from('0500', 'hex'), Buffer.from('0101ff', 'hex'),
      Buffer.from('170d3233303130313030303030305a', 'hex'), Buffer.from('020102', 'hex'), Buffer.from('0603551d13', 'hex'),
    ),
  ),
  node: fc.tuple(fc.constantFrom(0x30, 0x31, 0xa0, 0xa3), fc.array(tie('tree') as fc.Arbitrary<Buffer>, { maxLength: 8 }))
    .map(([tag, kids]) => tlv(tag, Buffer.concat(kids))),
  tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('leaf') as fc.Arbitrary<Buffer>, tie('node') as fc.Arbitrary<Buffer>),
}));

describe('x509 on random input', () => {
  it('random bytes, and random bytes behind a SEQUENCE header', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), fc.constantFrom(...CODES), (b, code) => {
      answers(code, () => parseCertificate(b, code));
      answers(code, () => parseCertificate(b, code, { encoding: 'ber' }));
      answers(code, () => parseCrl(b, code));
      answers(code, () => new Asn1Reader(code).decode(b, 'input'));
    }), { numRuns: 300 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1500 }), fc.constantFrom(...CODES), (b, code) => {
      const framed = Buffer.concat([Buffer.from([0x30, 0x82, b.length >> 8, b.length & 0xff]), b]);
      answers(code, () => parseCertificate(framed, code));
      answers(code, () => parseCrl(framed, code));
    }), { numRuns: 300 });
  });

  it('random DER-shaped trees', () => {
    fc.assert(fc.property(tree, fc.constantFrom(...CODES), (t, code) => {
      const cert = tlv(0x30, t);
      answers(code, () => parseCertificate(cert, code));
      answers(code, () => parseCertificate(cert, code, { encoding: 'ber' }));
      answers(code, () => parseCrl(cert, code));
    }), { numRuns: 400 });
  });

  it('PEM: arbitrary text around the markers', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), fc.constantFrom(...CODES), (s, code) => {
      answers(code, () => pemCertificates(`-----BEGIN CERTIFICATE-----${s}-----END CERTIFICATE-----${s}`, code, { nothingAfter: s.length % 2 === 0 }));
      answers(code, () => pemBlocks(`${s}-----BEGIN X509 CRL-----\n${s}`, 'X509 CRL', code));
    }), { numRuns: 300 });
  });
});

describe('x509 on mutated real certificates and CRLs', () => {
  // Each with the certificate that signed it: a mutation that still parses must not verify.
  const cases: [string, Buffer, Buffer, 'der' | 'ber'][] = [
    ['AMD VCEK (RSA-PSS)', vcek, amdAsk, 'der'],
    ['AMD ARK (self-signed)', amdArk, amdArk, 'der'],
    ['Intel PCK Platform CA (ECDSA P-256)', pckPlatformCa, intelRoot, 'der'],
    ['NVIDIA device leaf (ECDSA P-384)', nvidiaLeaf, nvidiaBrom, 'der'],
    ['GCE EK certificate (RSA, read as BER)', gceLeaf, gceIntermediate, 'ber'],
  ];

  it.each(cases)('%s: only AttestdError with the caller\'s code; a change never verifies', (_name, base, issuerDer, encoding) => {
    const issuer = parseCertificate(issuerDer, 'INVALID_ARGUMENT', { encoding });
    expect(signedBy(parseCertificate(base, 'INVALID_ARGUMENT', { encoding }), issuer)).toBe(true);
    fc.assert(fc.property(mutated(base), fc.constantFrom(...CODES), (b, code) => {
      let cert: ReturnType<typeof parseCertificate> | undefined;
      answers(code, () => (cert = parseCertificate(b, code, { encoding })));
      if (cert === undefined) return;
      expect(cert.der.equals(b)).toBe(true);
      if (encoding === 'der') expect(cert.canonical).toBe(true);
      expect(signedBy(cert, issuer)).toBe(b.equals(base));
    }), { numRuns: 150 });
  });

  it.each([['root CRL', rootCrl], ['PCK Platform CA CRL', platformCrl]] as const)('Intel %s: only AttestdError; a change never verifies', (name, base) => {
    const issuer = parseCertificate(name === 'root CRL' ? intelRoot : pckPlatformCa, 'INVALID_ARGUMENT');
    expect(crlSignedBy(parseCrl(base, 'INVALID_ARGUMENT'), issuer.publicKey)).toBe(true);
    fc.assert(fc.property(mutated(base), (b) => {
      let crl: ReturnType<typeof parseCrl> | undefined;
      answers('TDX_COLLATERAL_INVALID', () => (crl = parseCrl(b, 'TDX_COLLATERAL_INVALID')));
      if (crl !== undefined) expect(crlSignedBy(crl, issuer.publicKey)).toBe(b.equals(base));
    }), { numRuns: name === 'root CRL' ? 150 : 60 });
  });
});
