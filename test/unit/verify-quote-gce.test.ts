// Recorded GCE vTPM quotes (shared/fixtures/tpm/gce_cos85_*, from go-tpm-tools, see
// SOURCES.md): RSA-2048 AK with nameAlg SHA-256 and a fixed RSASSA/SHA-256 scheme; one
// quote per PCR bank (SHA-1, SHA-256, SHA-384), each over PCR0-23 and each signed over a
// SHA-256 digest, so the quoted pcrDigest is SHA-256 whatever the bank.
import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifyQuote } from '../../daemon/verify/quote.js';
import { parseQuoteAttest } from '../../daemon/verify/tpm-attest.js';
import { encodeTpm2bPublic, parseTpm2bPublic, parseTpmtPublic, TPMA_OBJECT } from '../../daemon/verify/tpm-public.js';
import { parseTpmtSignature } from '../../daemon/verify/tpm-signature.js';
import type { PcrBank } from '../../daemon/verify/pcr.js';
import { GCE_BANKS, codeOf, flipBit, gceQuote, rsaTpmtPublic, type GceSet } from './verify-helpers.js';

const SETS: GceSet[] = ['nonce9009', 'nononce'];
const CASES = SETS.flatMap((set) => GCE_BANKS.map((bank) => ({ set, bank })));
const ALL_PCRS = Array.from({ length: 24 }, (_, i) => i);

function input(set: GceSet, bank: (typeof GCE_BANKS)[number]) {
  const q = gceQuote(set, bank);
  return { attest: q.attest, signature: q.signature, pcrs: q.pcrs, ak: parseTpmtPublic(q.akPublic), expectedNonce: q.nonce };
}

function clonePcrs(pcrs: PcrBank[]): PcrBank[] {
  return pcrs.map((b) => ({ alg: b.alg, values: new Map([...b.values].map(([i, v]) => [i, Buffer.from(v)])) }));
}

describe('GCE vTPM attestation key', () => {
  it('parses as a restricted RSA-2048 signing key named by SHA-256', () => {
    const bytes = gceQuote('nonce9009', 'sha256').akPublic;
    const ak = parseTpmtPublic(bytes);
    expect(ak.type).toBe('rsa');
    expect(ak.nameAlg).toBe('sha256');
    expect(ak.restricted).toBe(true);
    expect(ak.sign).toBe(true);
    expect(ak.objectAttributes).toBe(0x00050072);
    expect(ak.scheme).toEqual({ alg: 'rsassa', hash: 'sha256' });
    expect(ak.key.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048, publicExponent: 65537n });
    expect(ak.publicArea.equals(bytes)).toBe(true);
    expect(ak.name.toString('hex')).toBe('000b' + createHash('sha256').update(bytes).digest('hex'));
  });

  it('round-trips through TPM2B_PUBLIC', () => {
    const ak = parseTpmtPublic(gceQuote('nonce9009', 'sha1').akPublic);
    const encoded = encodeTpm2bPublic(ak);
    expect(encoded.readUInt16BE(0)).toBe(280);
    expect(parseTpm2bPublic(encoded).name.equals(ak.name)).toBe(true);
    expect(codeOf(() => parseTpm2bPublic(encoded.subarray(0, encoded.length - 1)))).toBe('QUOTE_MALFORMED');
    expect(codeOf(() => parseTpmtPublic(Buffer.concat([ak.publicArea, Buffer.alloc(1)])))).toBe('QUOTE_MALFORMED');
  });

  it('is the same key in both recorded sets, so each set\'s AK verifies the other\'s quotes', () => {
    const a = parseTpmtPublic(gceQuote('nonce9009', 'sha1').akPublic);
    const b = parseTpmtPublic(gceQuote('nononce', 'sha1').akPublic);
    expect(a.name.equals(b.name)).toBe(true);
    for (const bank of GCE_BANKS) {
      expect(verifyQuote({ ...input('nonce9009', bank), ak: b }).banks).toHaveLength(1);
      expect(verifyQuote({ ...input('nononce', bank), ak: a }).banks).toHaveLength(1);
    }
  });
});

describe.each(CASES)('GCE quote $set / $bank bank', ({ set, bank }) => {
  it('verifies and returns only the quoted bank, 24 PCRs', () => {
    const q = gceQuote(set, bank);
    const v = verifyQuote(input(set, bank));
    expect(v.attest.extraData.equals(q.nonce)).toBe(true);
    expect(v.attest.pcrSelections).toEqual([{ alg: bank, pcrs: ALL_PCRS }]);
    expect(v.attest.pcrDigest).toHaveLength(32);
    expect(v.attest.clockInfo.clock).toBeGreaterThan(0n);
    expect(v.attest.clockInfo.safe).toBe(true);
    expect(v.attest.raw.equals(q.attest)).toBe(true);
    expect(v.banks).toHaveLength(1);
    expect(v.banks[0]?.alg).toBe(bank);
    expect([...(v.banks[0]?.values.keys() ?? [])]).toEqual(ALL_PCRS);
    const presented = q.pcrs.find((b) => b.alg === bank);
    expect(v.banks[0]?.values.get(7)?.equals(presented?.values.get(7) ?? Buffer.alloc(0))).toBe(true);
  });

  it('carries an RSASSA/SHA-256 signature', () => {
    const sig = parseTpmtSignature(gceQuote(set, bank).signature);
    expect(sig.sigAlg).toBe('rsassa');
    expect(sig.hash).toBe('sha256');
    expect(sig.sig).toHaveLength(256);
  });

  it('rejects a different nonce', () => {
    const wrong = set === 'nonce9009' ? [Buffer.from('9008', 'hex'), Buffer.alloc(0), Buffer.from('900900', 'hex')] : [Buffer.from('9009', 'hex')];
    for (const expectedNonce of wrong) {
      expect(codeOf(() => verifyQuote({ ...input(set, bank), expectedNonce }))).toBe('QUOTE_NONCE_MISMATCH');
    }
  });

  it('rejects any flipped bit in the attest bytes as a bad signature', () => {
    const base = input(set, bank);
    for (const at of [0, 5, 12, 0x2c, 0x40, 0x4e, base.attest.length - 1]) {
      expect(codeOf(() => verifyQuote({ ...base, attest: flipBit(base.attest, at) }))).toBe('QUOTE_BAD_SIGNATURE');
    }
  });

  it('rejects a flipped signature byte', () => {
    const base = input(set, bank);
    for (const at of [6, 100, base.signature.length - 1]) {
      expect(codeOf(() => verifyQuote({ ...base, signature: flipBit(base.signature, at, 3) }))).toBe('QUOTE_BAD_SIGNATURE');
    }
  });

  it('rejects the signature relabelled with another scheme or hash', () => {
    const base = input(set, bank);
    const pss = Buffer.from(base.signature);
    pss.writeUInt16BE(0x0016, 0);
    expect(codeOf(() => verifyQuote({ ...base, signature: pss }))).toBe('QUOTE_BAD_SIGNATURE');
    const sha384 = Buffer.from(base.signature);
    sha384.writeUInt16BE(0x000c, 2);
    expect(codeOf(() => verifyQuote({ ...base, signature: sha384 }))).toBe('QUOTE_BAD_SIGNATURE');
  });

  it('rejects a changed PCR value', () => {
    const base = input(set, bank);
    const pcrs = clonePcrs(base.pcrs);
    const value = pcrs.find((b) => b.alg === bank)?.values.get(0);
    if (!value) throw new Error('fixture lacks PCR0');
    value[0] = (value[0] ?? 0) ^ 1;
    expect(codeOf(() => verifyQuote({ ...base, pcrs }))).toBe('QUOTE_PCR_DIGEST_MISMATCH');
  });

  it('rejects a missing, short or unpresented PCR bank', () => {
    const base = input(set, bank);
    const missing = clonePcrs(base.pcrs);
    missing.find((b) => b.alg === bank)?.values.delete(23);
    expect(codeOf(() => verifyQuote({ ...base, pcrs: missing }))).toBe('QUOTE_PCR_SELECTION_MISMATCH');
    const short = clonePcrs(base.pcrs);
    short.find((b) => b.alg === bank)?.values.set(4, Buffer.alloc(4));
    expect(codeOf(() => verifyQuote({ ...base, pcrs: short }))).toBe('QUOTE_PCR_SELECTION_MISMATCH');
    const noBank = base.pcrs.filter((b) => b.alg !== bank);
    expect(codeOf(() => verifyQuote({ ...base, pcrs: noBank }))).toBe('QUOTE_PCR_SELECTION_MISMATCH');
    const twice = [...clonePcrs(base.pcrs), ...clonePcrs(base.pcrs)];
    expect(codeOf(() => verifyQuote({ ...base, pcrs: twice }))).toBe('QUOTE_PCR_SELECTION_MISMATCH');
  });

  it('rejects a quote signed by another key', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const other = parseTpmtPublic(rsaTpmtPublic(publicKey));
    expect(codeOf(() => verifyQuote({ ...input(set, bank), ak: other }))).toBe('QUOTE_BAD_SIGNATURE');
  });
});

describe('GCE quote with a key that is not an attestation key', () => {
  function withAttributes(attributes: number) {
    const area = Buffer.from(gceQuote('nonce9009', 'sha256').akPublic);
    area.writeUInt32BE(attributes, 4);
    return parseTpmtPublic(area);
  }

  it('rejects the same key material without the restricted attribute', () => {
    const ak = withAttributes(0x00050072 & ~TPMA_OBJECT.RESTRICTED);
    expect(ak.restricted).toBe(false);
    expect(codeOf(() => verifyQuote({ ...input('nonce9009', 'sha256'), ak }))).toBe('QUOTE_KEY_NOT_RESTRICTED');
  });

  it('rejects a restricted key that is not a signing key, or also a decryption key', () => {
    const noSign = withAttributes(0x00050072 & ~TPMA_OBJECT.SIGN_ENCRYPT);
    expect(codeOf(() => verifyQuote({ ...input('nonce9009', 'sha256'), ak: noSign }))).toBe('QUOTE_KEY_NOT_RESTRICTED');
    const decrypt = withAttributes(0x00050072 | TPMA_OBJECT.DECRYPT);
    expect(codeOf(() => verifyQuote({ ...input('nonce9009', 'sha256'), ak: decrypt }))).toBe('QUOTE_KEY_NOT_RESTRICTED');
  });

  it('accepts the unmodified key with the same inputs', () => {
    expect(() => verifyQuote({ ...input('nonce9009', 'sha256'), ak: withAttributes(0x00050072) })).not.toThrow();
  });
});

describe('GCE quote swapped between banks', () => {
  it('rejects one bank\'s attest with another bank\'s signature', () => {
    const a = input('nonce9009', 'sha1');
    const b = input('nonce9009', 'sha256');
    expect(codeOf(() => verifyQuote({ ...a, signature: b.signature }))).toBe('QUOTE_BAD_SIGNATURE');
  });

  it('parses the attest fields without trusting them', () => {
    const attest = parseQuoteAttest(gceQuote('nononce', 'sha1').attest);
    expect(attest.extraData).toHaveLength(0);
    expect(attest.qualifiedSigner.readUInt16BE(0)).toBe(0x000b);
    expect(attest.qualifiedSigner).toHaveLength(34);
    expect(attest.firmwareVersion).toBe(0x2016051100162800n);
  });
});
