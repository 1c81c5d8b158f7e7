// Synthetic quotes shaped like those of the daemon's own AK (ECC P-256, ECDSA/SHA-256): a
// TPMT_PUBLIC and a TPMS_ATTEST built here, signed with node:crypto over the SHA-256 digest
// as a TPM does. Also P-384 and RSAPSS keys, and the checks that only synthetic data reaches.
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { pcrDigest, type PcrSelection } from '../../daemon/verify/pcr.js';
import { verifyQuote } from '../../daemon/verify/quote.js';
import { TPM_ALG, type HashAlg } from '../../daemon/verify/tpm-alg.js';
import { parseTpmtPublic, TPMA_OBJECT, type TpmPublicKey } from '../../daemon/verify/tpm-public.js';
import { TpmWriter } from '../../daemon/verify/tpm-reader.js';
import { parseTpmtSignature, verifyTpmSignature } from '../../daemon/verify/tpm-signature.js';
import {
  AK_ATTRIBUTES, buildAttest, codeOf, eccTpmtPublic, ecdsaSign, flipBit, p256, rsaSign, rsaTpmtPublic, syntheticBanks,
  type AttestFields,
} from './verify-helpers.js';

const SELECTIONS: PcrSelection[] = [
  { alg: 'sha256', pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 14] },
  { alg: 'sha1', pcrs: [0, 7] },
];
const BANKS = syntheticBanks(['sha1', 'sha256', 'sha384'], Array.from({ length: 24 }, (_, i) => i));

interface Built {
  attest: Buffer;
  signature: Buffer;
  ak: TpmPublicKey;
  nonce: Buffer;
  privateKey: KeyObject;
}

function build(opts: { hash?: HashAlg; fields?: Partial<AttestFields>; keyScheme?: number } = {}): Built {
  const hash = opts.hash ?? 'sha256';
  const { privateKey, publicKey } = p256();
  const ak = parseTpmtPublic(eccTpmtPublic(publicKey, { scheme: opts.keyScheme ?? TPM_ALG.ECDSA, schemeHash: hash }));
  const nonce = randomBytes(32);
  const attest = buildAttest({
    extraData: nonce,
    selections: SELECTIONS,
    pcrDigest: pcrDigest(SELECTIONS, BANKS, hash),
    ...opts.fields,
  });
  return { attest, signature: ecdsaSign(privateKey, attest, hash, 32), ak, nonce, privateKey };
}

function verify(b: Built, over: Partial<Parameters<typeof verifyQuote>[0]> = {}) {
  return verifyQuote({ attest: b.attest, signature: b.signature, pcrs: BANKS, ak: b.ak, expectedNonce: b.nonce, ...over });
}

describe('ECDSA P-256 attestation key', () => {
  it('parses a TPMT_PUBLIC into the same public key', () => {
    const { publicKey } = p256();
    const area = eccTpmtPublic(publicKey);
    const ak = parseTpmtPublic(area);
    expect(ak.type).toBe('ecc');
    expect(ak.curve).toBe('P-256');
    expect(ak.scheme).toEqual({ alg: 'ecdsa', hash: 'sha256' });
    expect(ak.restricted && ak.sign).toBe(true);
    expect(ak.key.export({ format: 'jwk' })).toEqual(publicKey.export({ format: 'jwk' }));
    expect(ak.name.subarray(2).equals(createHash('sha256').update(area).digest())).toBe(true);
  });

  it('refuses a point that is not on the curve', () => {
    const area = eccTpmtPublic(p256().publicKey);
    const broken = flipBit(area, area.length - 1);
    expect(codeOf(() => parseTpmtPublic(broken))).toBe('QUOTE_MALFORMED');
  });

  it('refuses an unsupported curve, key type, scheme or name algorithm', () => {
    const area = eccTpmtPublic(p256().publicKey);
    const curveAt = 2 + 2 + 4 + 2 + 2 + 4; // type, nameAlg, attributes, authPolicy, symmetric, scheme+hash
    expect(area.readUInt16BE(curveAt)).toBe(0x0003);
    const p521 = Buffer.from(area);
    p521.writeUInt16BE(0x0005, curveAt);
    expect(codeOf(() => parseTpmtPublic(p521))).toBe('QUOTE_UNSUPPORTED_ALGORITHM');
    const keyedHash = Buffer.from(area);
    keyedHash.writeUInt16BE(TPM_ALG.KEYEDHASH, 0);
    expect(codeOf(() => parseTpmtPublic(keyedHash))).toBe('QUOTE_UNSUPPORTED_ALGORITHM');
    const rsaScheme = Buffer.from(area);
    rsaScheme.writeUInt16BE(TPM_ALG.RSASSA, 12);
    expect(codeOf(() => parseTpmtPublic(rsaScheme))).toBe('QUOTE_UNSUPPORTED_ALGORITHM');
    const nullName = Buffer.from(area);
    nullName.writeUInt16BE(TPM_ALG.NULL, 2);
    expect(codeOf(() => parseTpmtPublic(nullName))).toBe('QUOTE_UNSUPPORTED_ALGORITHM');
  });
});

describe('ECDSA P-256 quote', () => {
  it('verifies and returns only the quoted PCRs', () => {
    const b = build();
    const v = verify(b);
    expect(v.attest.extraData.equals(b.nonce)).toBe(true);
    expect(v.attest.pcrSelections).toEqual(SELECTIONS);
    expect(v.banks.map((bank) => [bank.alg, [...bank.values.keys()]])).toEqual([
      ['sha256', [0, 1, 2, 3, 4, 5, 6, 7, 14]],
      ['sha1', [0, 7]],
    ]);
    expect(v.attest.clockInfo).toEqual({ clock: 123456789n, resetCount: 7, restartCount: 2, safe: true });
  });

  it('rejects tampered attest bytes, signature bytes and swapped r and s', () => {
    const b = build();
    for (const at of [0, 7, 20, b.attest.length - 1]) {
      expect(codeOf(() => verify(b, { attest: flipBit(b.attest, at) }))).toBe('QUOTE_BAD_SIGNATURE');
    }
    for (const at of [8, 40, b.signature.length - 1]) {
      expect(codeOf(() => verify(b, { signature: flipBit(b.signature, at) }))).toBe('QUOTE_BAD_SIGNATURE');
    }
    const sig = parseTpmtSignature(b.signature);
    const swapped = new TpmWriter().u16(TPM_ALG.ECDSA).u16(TPM_ALG.SHA256).tpm2b(sig.s ?? Buffer.alloc(0)).tpm2b(sig.r ?? Buffer.alloc(0)).finish();
    expect(codeOf(() => verify(b, { signature: swapped }))).toBe('QUOTE_BAD_SIGNATURE');
  });

  it('rejects a wrong nonce, a changed PCR and a missing PCR', () => {
    const b = build();
    expect(codeOf(() => verify(b, { expectedNonce: flipBit(b.nonce, 31) }))).toBe('QUOTE_NONCE_MISMATCH');
    expect(codeOf(() => verify(b, { expectedNonce: b.nonce.subarray(1) }))).toBe('QUOTE_NONCE_MISMATCH');
    const changed = syntheticBanks(['sha1', 'sha256'], Array.from({ length: 24 }, (_, i) => i));
    changed[0]?.values.set(7, Buffer.alloc(20, 1));
    expect(codeOf(() => verify(b, { pcrs: changed }))).toBe('QUOTE_PCR_DIGEST_MISMATCH');
    const missing = syntheticBanks(['sha1', 'sha256'], [0, 1, 2, 3, 4, 5, 6, 7]);
    expect(codeOf(() => verify(b, { pcrs: missing }))).toBe('QUOTE_PCR_SELECTION_MISMATCH');
  });

  it('rejects a signature from another key and a hash other than the key\'s scheme', () => {
    const b = build();
    const other = p256().privateKey;
    expect(codeOf(() => verify(b, { signature: ecdsaSign(other, b.attest, 'sha256', 32) }))).toBe('QUOTE_BAD_SIGNATURE');
    expect(codeOf(() => verify(b, { signature: ecdsaSign(b.privateKey, b.attest, 'sha384', 32) }))).toBe('QUOTE_BAD_SIGNATURE');
  });

  it('checks magic, type and trailing bytes only after the signature verifies', () => {
    const cases: [Partial<AttestFields>, string][] = [
      [{ magic: 0xff544348 }, 'QUOTE_BAD_MAGIC'],
      [{ type: 0x8014 }, 'QUOTE_WRONG_TYPE'],
    ];
    for (const [fields, code] of cases) {
      const b = build({ fields });
      expect(codeOf(() => verify(b))).toBe(code);
      expect(codeOf(() => verify(b, { attest: flipBit(b.attest, 30) }))).toBe('QUOTE_BAD_SIGNATURE');
    }
    const b = build();
    const trailing = Buffer.concat([b.attest, Buffer.alloc(1)]);
    expect(codeOf(() => verify(b, { attest: trailing, signature: ecdsaSign(b.privateKey, trailing, 'sha256', 32) }))).toBe('QUOTE_MALFORMED');
  });

  it('accepts r and s without leading zeros, as some TPMs send them', () => {
    const b = build();
    for (let i = 0; i < 4096; i++) {
      const rs = sign('sha256', b.attest, { key: b.privateKey, dsaEncoding: 'ieee-p1363' });
      if (rs[0] !== 0) continue;
      const short = new TpmWriter().u16(TPM_ALG.ECDSA).u16(TPM_ALG.SHA256).tpm2b(rs.subarray(1, 32)).tpm2b(rs.subarray(32)).finish();
      expect(() => verify(b, { signature: short })).not.toThrow();
      return;
    }
    throw new Error('no signature with a leading zero in r after 4096 tries');
  });

  it('rejects r longer than the curve', () => {
    const b = build();
    const sig = parseTpmtSignature(b.signature);
    const long = { ...sig, r: Buffer.concat([Buffer.from([1]), sig.r ?? Buffer.alloc(0)]) };
    expect(verifyTpmSignature(b.ak, b.attest, long)).toBe(false);
    const padded = { ...sig, r: Buffer.concat([Buffer.from([0]), sig.r ?? Buffer.alloc(0)]) };
    expect(verifyTpmSignature(b.ak, b.attest, padded)).toBe(true);
  });
});

describe('signing hash and key scheme', () => {
  it('computes the PCR digest with the signature\'s hash for a key without a fixed scheme', () => {
    const b = build({ hash: 'sha384', keyScheme: TPM_ALG.NULL });
    expect(b.ak.scheme).toBeUndefined();
    expect(verify(b).attest.pcrDigest).toHaveLength(48);
  });

  it('refuses SHA-1 signatures unless allowed by name', () => {
    const b = build({ hash: 'sha1', keyScheme: TPM_ALG.NULL });
    expect(codeOf(() => verify(b))).toBe('QUOTE_UNSUPPORTED_ALGORITHM');
    expect(verify(b, { allowSha1Signature: true }).attest.pcrDigest).toHaveLength(20);
  });

  it('rejects a non-restricted ECC key', () => {
    const { privateKey, publicKey } = p256();
    const ak = parseTpmtPublic(eccTpmtPublic(publicKey, { attributes: AK_ATTRIBUTES & ~TPMA_OBJECT.RESTRICTED }));
    const attest = buildAttest({ extraData: Buffer.alloc(0), selections: SELECTIONS, pcrDigest: pcrDigest(SELECTIONS, BANKS, 'sha256') });
    const signature = ecdsaSign(privateKey, attest, 'sha256', 32);
    const base = { attest, signature, pcrs: BANKS, expectedNonce: Buffer.alloc(0) };
    expect(codeOf(() => verifyQuote({ ...base, ak }))).toBe('QUOTE_KEY_NOT_RESTRICTED');
    const restricted = parseTpmtPublic(eccTpmtPublic(publicKey));
    expect(() => verifyQuote({ ...base, ak: restricted })).not.toThrow();
  });
});

describe('other key types', () => {
  it('verifies a P-384 quote and rejects it tampered', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const ak = parseTpmtPublic(eccTpmtPublic(publicKey, { schemeHash: 'sha384' }));
    expect(ak.curve).toBe('P-384');
    const attest = buildAttest({ extraData: Buffer.from('n'), selections: SELECTIONS, pcrDigest: pcrDigest(SELECTIONS, BANKS, 'sha384') });
    const signature = ecdsaSign(privateKey, attest, 'sha384', 48);
    const base = { attest, signature, pcrs: BANKS, ak, expectedNonce: Buffer.from('n') };
    expect(verifyQuote(base).banks).toHaveLength(2);
    expect(codeOf(() => verifyQuote({ ...base, attest: flipBit(attest, 50) }))).toBe('QUOTE_BAD_SIGNATURE');
  });

  it('verifies an RSAPSS quote and rejects a PKCS#1 v1.5 signature from the same key', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ak = parseTpmtPublic(rsaTpmtPublic(publicKey, { scheme: TPM_ALG.RSAPSS }));
    const attest = buildAttest({ extraData: Buffer.alloc(0), selections: SELECTIONS, pcrDigest: pcrDigest(SELECTIONS, BANKS, 'sha256') });
    const base = { attest, pcrs: BANKS, ak, expectedNonce: Buffer.alloc(0) };
    expect(() => verifyQuote({ ...base, signature: rsaSign(privateKey, attest, 'sha256', true) })).not.toThrow();
    expect(codeOf(() => verifyQuote({ ...base, signature: rsaSign(privateKey, flipBit(attest, 3), 'sha256', true) }))).toBe('QUOTE_BAD_SIGNATURE');
    expect(codeOf(() => verifyQuote({ ...base, signature: rsaSign(privateKey, attest, 'sha256', false) }))).toBe('QUOTE_BAD_SIGNATURE');
  });

  it('does not verify an ECDSA signature with an RSA key or the reverse', () => {
    const b = build();
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rsaAk = parseTpmtPublic(rsaTpmtPublic(publicKey));
    expect(verifyTpmSignature(rsaAk, b.attest, parseTpmtSignature(b.signature))).toBe(false);
    const rsaSig = { sigAlg: 'rsassa' as const, hash: 'sha256' as const, sig: Buffer.alloc(256, 1) };
    expect(verifyTpmSignature(b.ak, b.attest, rsaSig)).toBe(false);
    expect(verifyTpmSignature(rsaAk, b.attest, rsaSig)).toBe(false);
  });

  it('refuses RSA keys below 2048 bits and even exponents', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    expect(codeOf(() => parseTpmtPublic(rsaTpmtPublic(publicKey)))).toBe('QUOTE_UNSUPPORTED_ALGORITHM');
    const area = rsaTpmtPublic(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey);
    const exponentAt = 2 + 2 + 4 + 2 + 2 + 4 + 2;
    area.writeUInt32BE(4, exponentAt);
    expect(codeOf(() => parseTpmtPublic(area))).toBe('QUOTE_MALFORMED');
  });
});
