// Decoders of untrusted GPU evidence and RIMs: whatever comes in, the only thing thrown is
// AttestdError, and a mutated report or RIM never verifies unless the mutation changed nothing.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { AttestdError } from '../../daemon/base/errors.js';
import { nvidiaPemCertificates as pemCertificates, parseNvidiaCertificate as parseCertificate, verifyChain, NVIDIA_DEVICE_ROOT_SPKI_SHA256 } from '../../daemon/verify/gpu-report/chain.js';
import { diceTcbInfo } from '../../daemon/verify/gpu-report/fwid.js';
import { parseOpaqueData } from '../../daemon/verify/gpu-report/opaque.js';
import { parseRimXml } from '../../daemon/verify/gpu-report/rim.js';
import { verifyRim } from '../../daemon/verify/gpu-report/rim-signature.js';
import { MAX_TRAILING_BYTES, parseSpdmReport, REQUEST_LENGTH } from '../../daemon/verify/gpu-report/spdm.js';
import { verifyGpuAttestation } from '../../daemon/verify/gpu-report/verify.js';
import { gpuSamples, rimFixture, RIM_AT } from './gpu-report-helpers.js';

/** True when `fn` returns, false when it throws AttestdError; anything else is rethrown. */
function passes(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (err) {
    if (!(err instanceof AttestdError)) throw err;
    return false;
  }
}

function onlyAttestdError(fn: () => unknown): void {
  passes(fn);
}

/** A copy of `base` with a few bytes overwritten, and sometimes cut short. */
const mutated = (base: Uint8Array): fc.Arbitrary<Buffer> =>
  fc.tuple(fc.array(fc.tuple(fc.nat({ max: base.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.option(fc.nat({ max: base.length })))
    .map(([edits, cut]) => {
      const c = Buffer.from(base);
      for (const [at, v] of edits) c[at] = v;
      return cut === null ? c : c.subarray(0, cut);
    });

const samples = gpuSamples();
const h100 = samples[0];
const nvswitch = samples[9];
const blackwell = samples[13];
if (!h100 || !nvswitch || !blackwell) throw new Error('fixtures missing');
const opaqueOf = (report: Buffer): Buffer => parseSpdmReport(report).opaqueData;

describe('SPDM report parser on hostile input', () => {
  it('random bytes, and random bytes behind a valid-looking header', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (b) => onlyAttestdError(() => parseSpdmReport(b))), { numRuns: 300 });
    const header = h100.report.subarray(0, REQUEST_LENGTH + 2);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 800 }), (tail) => onlyAttestdError(() => parseSpdmReport(Buffer.concat([header, tail])))), { numRuns: 300 });
  });

  it('mutated real reports (H100, NVSwitch, Blackwell): parse throws only AttestdError; verify never passes a change', () => {
    for (const s of [h100, nvswitch, blackwell]) {
      fc.assert(fc.property(mutated(s.report), (b) => {
        onlyAttestdError(() => parseSpdmReport(b));
        const passed = passes(() => verifyGpuAttestation({ report: b, certChainPem: s.chainPem, expectedNonce: s.nonce, at: RIM_AT }));
        expect(passed).toBe(b.equals(s.report));
      }), { numRuns: 120 });
    }
  });
});

describe('bytes after the signature', () => {
  it('up to MAX_TRAILING_BYTES of anything verify, counted and never read; more are malformed', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), (tail) => {
      const report = Buffer.concat([h100.report, tail]);
      const verify = () => verifyGpuAttestation({ report, certChainPem: h100.chainPem, expectedNonce: h100.nonce, at: RIM_AT });
      if (tail.length > MAX_TRAILING_BYTES) expect(() => verify()).toThrow(expect.objectContaining({ code: 'GPU_REPORT_MALFORMED' }));
      else expect(verify().unsignedTrailingBytes).toBe(tail.length);
      expect(parseSpdmReport(Buffer.concat([h100.report, tail.subarray(0, MAX_TRAILING_BYTES)])).unsignedTrailingBytes).toBe(Math.min(tail.length, MAX_TRAILING_BYTES));
    }), { numRuns: 60 });
  });
});

describe('NVIDIA opaque data parser on hostile input', () => {
  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1024 }), (b) => onlyAttestdError(() => parseOpaqueData(b))), { numRuns: 500 });
  });

  it('mutated real opaque data, and random fields of every known type', () => {
    for (const s of [h100, nvswitch, blackwell]) {
      fc.assert(fc.property(mutated(opaqueOf(s.report)), (b) => onlyAttestdError(() => parseOpaqueData(b))), { numRuns: 200 });
    }
    const field = fc.tuple(fc.integer({ min: 0, max: 40 }), fc.uint8Array({ maxLength: 60 })).map(([type, value]) => {
      const head = Buffer.alloc(4);
      head.writeUInt16LE(type, 0);
      head.writeUInt16LE(value.length, 2);
      return Buffer.concat([head, value]);
    });
    fc.assert(fc.property(fc.array(field, { maxLength: 12 }), (fields) => onlyAttestdError(() => parseOpaqueData(Buffer.concat(fields)))), { numRuns: 500 });
  });
});

describe('certificates and the DICE extension on hostile input', () => {
  const ders = pemCertificates(h100.chainPem, 'GPU_CERT_CHAIN_INVALID');
  const bwLeaf = parseCertificate(pemCertificates(blackwell.chainPem, 'GPU_CERT_CHAIN_INVALID')[0] ?? Buffer.alloc(0), 'GPU_CERT_CHAIN_INVALID');

  it('mutated leaf certificates: parse and chain throw only AttestdError, and a changed leaf never chains', () => {
    const leaf = ders[0] ?? Buffer.alloc(0);
    fc.assert(fc.property(mutated(leaf), (b) => {
      onlyAttestdError(() => parseCertificate(b, 'GPU_CERT_CHAIN_INVALID'));
      const ok = passes(() => verifyChain([b, ...ders.slice(1)], { code: 'GPU_CERT_CHAIN_INVALID', what: 'device', pin: NVIDIA_DEVICE_ROOT_SPKI_SHA256, at: RIM_AT }));
      expect(ok).toBe(b.equals(leaf));
    }), { numRuns: 200 });
  });

  it('mutated DICE extension values (both layouts)', () => {
    for (const [oid, value] of [...bwLeaf.extensions].filter(([o]) => o.startsWith('2.23.133.5.4.1'))) {
      fc.assert(fc.property(mutated(value), (b) => onlyAttestdError(() => diceTcbInfo({ ...bwLeaf, extensions: new Map([[oid, b]]) }))), { numRuns: 200 });
    }
    const hopperLeaf = parseCertificate(ders[0] ?? Buffer.alloc(0), 'GPU_CERT_CHAIN_INVALID');
    const value = hopperLeaf.extensions.get('2.23.133.5.4.1') ?? Buffer.alloc(0);
    expect(value.length).toBeGreaterThan(100);
    fc.assert(fc.property(mutated(value), (b) => onlyAttestdError(() => diceTcbInfo({ ...hopperLeaf, extensions: new Map([['2.23.133.5.4.1', b]]) }))), { numRuns: 200 });
  });
});

describe('RIM parser on hostile input', () => {
  const rim = rimFixture('nvtrust_1010_0200_882_96005E0001_PROD.swidtag.xml').toString('utf8');
  const xmlChars = fc.constantFrom('<', '>', '/', '"', '=', '&', ';', ' ', 'a', ':', '!', '?', '-', '[', 'x', '\u0000', '\uffff');

  it('random strings and random XML-ish text', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (s) => onlyAttestdError(() => parseRimXml(s))), { numRuns: 300 });
    fc.assert(fc.property(fc.array(xmlChars, { maxLength: 300 }), (cs) => onlyAttestdError(() => parseRimXml(cs.join('')))), { numRuns: 300 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => onlyAttestdError(() => parseRimXml(b))), { numRuns: 300 });
  });

  it('mutated real RIMs: parse throws only AttestdError; verify never passes a change', () => {
    const edits = fc.array(fc.tuple(fc.nat({ max: rim.length - 1 }), xmlChars), { minLength: 1, maxLength: 4 });
    fc.assert(fc.property(edits, (es) => {
      const chars = [...rim];
      for (const [at, c] of es) chars[at] = c;
      const text = chars.join('');
      onlyAttestdError(() => parseRimXml(text));
      const ok = passes(() => verifyRim(text, { at: RIM_AT }));
      // Whitespace between attributes or inside the base64 certificates is not signed content.
      if (ok) expect(text === rim || es.every(([at, c]) => c === ' ' && /\s/.test(rim[at] ?? ''))).toBe(true);
    }), { numRuns: 60 });
  });
});
