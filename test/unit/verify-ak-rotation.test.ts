// The certification TPMS_ATTEST (TPM_ST_ATTEST_CERTIFY) and the AK rotation it proves: synthetic
// certifications built and signed here as a TPM does, each field tampered in turn, and a
// property test that the parser only ever throws AttestdError on hostile bytes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { akRotationQualifyingData, verifyAkRotation } from '../../daemon/verify/ak-rotation.js';
import { parseCertifyAttest, parseQuoteAttest } from '../../daemon/verify/tpm-attest.js';
import { TPM_ALG } from '../../daemon/verify/tpm-alg.js';
import { parseTpmtPublic, TPMA_OBJECT } from '../../daemon/verify/tpm-public.js';
import { AK_ATTRIBUTES, codeOf, eccTpmtPublic, flipBit, p256 } from './verify-helpers.js';
import { buildCertify, rotation, type Rotation } from './ak-rotation-helpers.js';

describe('parseCertifyAttest', () => {
  it('reads the header and the certified names, and refuses a quote and a certification as each other', () => {
    const name = Buffer.concat([Buffer.from([0x00, 0x0b]), Buffer.alloc(32, 0x11)]);
    const bytes = buildCertify({ extraData: Buffer.alloc(32, 0x22), name });
    const c = parseCertifyAttest(bytes);
    expect(c.name.equals(name)).toBe(true);
    expect(c.extraData.equals(Buffer.alloc(32, 0x22))).toBe(true);
    expect(c.clockInfo).toEqual({ clock: 42n, resetCount: 3, restartCount: 1, safe: true });
    expect(c.raw.equals(bytes)).toBe(true);
    expect(codeOf(() => parseQuoteAttest(bytes))).toBe('QUOTE_WRONG_TYPE');
    expect(codeOf(() => parseCertifyAttest(buildCertify({ extraData: Buffer.alloc(0), name, type: 0x8018 })))).toBe('QUOTE_WRONG_TYPE');
    expect(codeOf(() => parseCertifyAttest(buildCertify({ extraData: Buffer.alloc(0), name, magic: 0xff544346 })))).toBe('QUOTE_BAD_MAGIC');
    expect(codeOf(() => parseCertifyAttest(Buffer.concat([bytes, Buffer.from([0])])))).toBe('QUOTE_MALFORMED');
    expect(codeOf(() => parseCertifyAttest(bytes.subarray(0, bytes.length - 1)))).toBe('QUOTE_MALFORMED');
    // A name larger than any TPM name is refused before it is sliced.
    expect(codeOf(() => parseCertifyAttest(buildCertify({ extraData: Buffer.alloc(0), name: Buffer.alloc(67) })))).toBe('QUOTE_MALFORMED');
  });

  it('throws only AttestdError on random bytes, and on bytes that start like a certification', () => {
    const only = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        if (!(err instanceof AttestdError)) throw err;
      }
      return true;
    };
    const prefix = Buffer.from('ff5443478017', 'hex');
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) =>
      only(() => parseCertifyAttest(bytes)) && only(() => parseCertifyAttest(Buffer.concat([prefix, bytes])))), { numRuns: 500 });
  });

  it('round-trips what it was given, whatever the field sizes within bounds', () => {
    const tpm2b = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
    fc.assert(fc.property(tpm2b(64), tpm2b(66), tpm2b(66), (extraData, name, qualifiedName) => {
      const c = parseCertifyAttest(buildCertify({ extraData, name, qualifiedName }));
      return c.extraData.equals(extraData) && c.name.equals(name) && c.qualifiedName.equals(qualifiedName);
    }), { numRuns: 200 });
  });
});

describe('verifyAkRotation', () => {
  const verify = (r: Omit<Rotation, 'newKeys'>) => verifyAkRotation(r);

  it('accepts the old AK certifying the new one and gives the new AK', () => {
    const r = rotation();
    const next = verify(r);
    expect(next.publicArea.equals(r.newAkPublic)).toBe(true);
  });

  it('refuses a flipped byte anywhere in the certification, and a flipped signature', () => {
    const r = rotation();
    for (let i = 0; i < r.certifyInfo.length; i += 7) {
      expect(codeOf(() => verify({ ...r, certifyInfo: flipBit(r.certifyInfo, i) }))).toBe('AK_ROTATION_INVALID');
    }
    expect(codeOf(() => verify({ ...r, signature: flipBit(r.signature, r.signature.length - 1) }))).toBe('AK_ROTATION_INVALID');
    expect(codeOf(() => verify({ ...r, signature: Buffer.alloc(0) }))).toBe('AK_ROTATION_INVALID');
  });

  it('refuses another new AK than the certified one, and a certification signed by the new key', () => {
    const r = rotation();
    const other = eccTpmtPublic(p256().publicKey);
    expect(codeOf(() => verify({ ...r, newAkPublic: other }))).toBe('AK_ROTATION_INVALID');
    expect(codeOf(() => verify(rotation({ signWith: 'new' })))).toBe('AK_ROTATION_INVALID');
    // Trusted from another old key: the signature does not verify.
    expect(codeOf(() => verify({ ...r, oldAk: parseTpmtPublic(eccTpmtPublic(p256().publicKey)) }))).toBe('AK_ROTATION_INVALID');
  });

  it('refuses a certification made for another purpose or naming another key', () => {
    const r = rotation();
    const newAk = parseTpmtPublic(r.newAkPublic);
    expect(codeOf(() => verify(rotation({ fields: { extraData: Buffer.alloc(32) } })))).toBe('AK_ROTATION_INVALID');
    // The qualifying data with the names swapped: a rotation the other way round.
    expect(codeOf(() => verify(rotation({ fields: { extraData: akRotationQualifyingData(newAk.name, r.oldAk.name) } })))).toBe('AK_ROTATION_INVALID');
    expect(codeOf(() => verify(rotation({ fields: { name: r.oldAk.name } })))).toBe('AK_ROTATION_INVALID');
    expect(codeOf(() => verify(rotation({ fields: { type: 0x8018 } })))).toBe('AK_ROTATION_INVALID');
  });

  it('refuses a new key without the attributes of an attestation key, and an old key that is not restricted', () => {
    for (const drop of [TPMA_OBJECT.FIXED_TPM, TPMA_OBJECT.FIXED_PARENT, TPMA_OBJECT.RESTRICTED, TPMA_OBJECT.SENSITIVE_DATA_ORIGIN]) {
      expect(codeOf(() => verify(rotation({ newAttributes: AK_ATTRIBUTES & ~drop })))).toBe('AK_ROTATION_INVALID');
    }
    expect(codeOf(() => verify(rotation({ newAttributes: AK_ATTRIBUTES | TPMA_OBJECT.DECRYPT })))).toBe('AK_ROTATION_INVALID');
    const r = rotation();
    const loose = parseTpmtPublic(eccTpmtPublic(p256().publicKey, { attributes: AK_ATTRIBUTES & ~TPMA_OBJECT.RESTRICTED, scheme: TPM_ALG.ECDSA }));
    expect(codeOf(() => verify({ ...r, oldAk: loose }))).toBe('AK_ROTATION_INVALID');
  });
});
