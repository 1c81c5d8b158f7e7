import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encodePcrSelection, parsePcrSelection, pcrDigest } from '../../daemon/verify/pcr.js';
import { digestSize, hashAlgFromId, hashAlgId } from '../../daemon/verify/tpm-alg.js';
import { TpmReader, TpmWriter } from '../../daemon/verify/tpm-reader.js';
import { codeOf, gceQuote, syntheticBanks } from './verify-helpers.js';

describe('encodePcrSelection', () => {
  it('matches the selection bytes inside a recorded GCE quote', () => {
    const attest = gceQuote('nonce9009', 'sha256').attest;
    const encoded = encodePcrSelection([{ alg: 'sha256', pcrs: Array.from({ length: 24 }, (_, i) => i) }]);
    expect(encoded.toString('hex')).toBe('00000001000b03ffffff');
    // The selection sits just before the 34-byte TPM2B_DIGEST at the end.
    expect(attest.subarray(attest.length - 34 - encoded.length, attest.length - 34).equals(encoded)).toBe(true);
  });

  it('uses at least three bitmap bytes and grows to four for PCRs 24-31', () => {
    expect(encodePcrSelection([{ alg: 'sha1', pcrs: [] }]).toString('hex')).toBe('000000010004' + '03000000');
    expect(encodePcrSelection([{ alg: 'sha1', pcrs: [0, 9] }]).toString('hex')).toBe('000000010004' + '03010200');
    expect(encodePcrSelection([{ alg: 'sha384', pcrs: [31] }]).toString('hex')).toBe('00000001000c' + '0400000080');
    expect(encodePcrSelection([]).toString('hex')).toBe('00000000');
  });

  it('refuses indices that are not ascending or out of range, and too many banks', () => {
    for (const pcrs of [[1, 0], [3, 3], [32], [-1], [1.5]]) {
      expect(codeOf(() => encodePcrSelection([{ alg: 'sha256', pcrs }]))).toBe('INVALID_ARGUMENT');
    }
    const many = Array.from({ length: 17 }, () => ({ alg: 'sha256' as const, pcrs: [0] }));
    expect(codeOf(() => encodePcrSelection(many))).toBe('INVALID_ARGUMENT');
  });
});

describe('parsePcrSelection', () => {
  it('reads banks in order with ascending PCRs', () => {
    const bytes = Buffer.from('00000002' + '000b03800001' + '000404000000ff', 'hex');
    expect(parsePcrSelection(bytes)).toEqual([
      { alg: 'sha256', pcrs: [7, 16] },
      { alg: 'sha1', pcrs: [24, 25, 26, 27, 28, 29, 30, 31] },
    ]);
  });

  it('bounds the bank count and bitmap size before reading them', () => {
    expect(codeOf(() => parsePcrSelection(Buffer.from('00000011', 'hex')))).toBe('QUOTE_MALFORMED');
    expect(codeOf(() => parsePcrSelection(Buffer.from('ffffffff', 'hex')))).toBe('QUOTE_MALFORMED');
    expect(codeOf(() => parsePcrSelection(Buffer.from('00000001000b050000000000', 'hex')))).toBe('QUOTE_MALFORMED');
  });

  it('refuses a bank selected twice, unknown hashes, truncation and trailing bytes', () => {
    expect(codeOf(() => parsePcrSelection(Buffer.from('00000002000b03010000000b03020000', 'hex')))).toBe('QUOTE_MALFORMED');
    expect(codeOf(() => parsePcrSelection(Buffer.from('00000001001003010000', 'hex')))).toBe('QUOTE_UNSUPPORTED_ALGORITHM');
    expect(codeOf(() => parsePcrSelection(Buffer.from('00000001000b030100', 'hex')))).toBe('QUOTE_MALFORMED');
    expect(codeOf(() => parsePcrSelection(Buffer.from('00000001000b0301000000', 'hex')))).toBe('QUOTE_MALFORMED');
  });
});

describe('pcrDigest', () => {
  it('hashes the values in selection order, PCRs ascending', () => {
    const banks = syntheticBanks(['sha1', 'sha256'], [0, 1, 2]);
    const v = (alg: 'sha1' | 'sha256', i: number) => banks.find((b) => b.alg === alg)?.values.get(i) ?? Buffer.alloc(0);
    const expected = createHash('sha384').update(Buffer.concat([v('sha256', 0), v('sha256', 2), v('sha1', 1)])).digest();
    const got = pcrDigest([{ alg: 'sha256', pcrs: [0, 2] }, { alg: 'sha1', pcrs: [1] }], banks, 'sha384');
    expect(got.equals(expected)).toBe(true);
    expect(pcrDigest([], banks, 'sha256').equals(createHash('sha256').digest())).toBe(true);
  });

  it('reproduces the digest a recorded GCE quote carries', () => {
    const q = gceQuote('nononce', 'sha1');
    const got = pcrDigest([{ alg: 'sha1', pcrs: Array.from({ length: 24 }, (_, i) => i) }], q.pcrs, 'sha256');
    expect(got.equals(q.attest.subarray(q.attest.length - 32))).toBe(true);
  });
});

describe('tpm-alg', () => {
  it('maps hash ids both ways and refuses the rest', () => {
    for (const alg of ['sha1', 'sha256', 'sha384', 'sha512'] as const) {
      expect(hashAlgFromId(hashAlgId(alg))).toBe(alg);
      expect(createHash(alg).digest()).toHaveLength(digestSize(alg));
    }
    for (const id of [0x0000, 0x0010, 0x0012, 0x0001, 0xffff]) {
      expect(codeOf(() => hashAlgFromId(id))).toBe('QUOTE_UNSUPPORTED_ALGORITHM');
    }
  });
});

describe('TpmReader', () => {
  it('reads big-endian integers and sized buffers', () => {
    const bytes = new TpmWriter().u8(1).u16(0x0203).u32(0x04050607).u64(0x08090a0b0c0d0e0fn).tpm2b(Buffer.from('hi')).finish();
    const r = new TpmReader(bytes);
    expect([r.u8(), r.u16(), r.u32(), r.u64()]).toEqual([1, 0x0203, 0x04050607, 0x08090a0b0c0d0e0fn]);
    expect(r.tpm2b(2).toString()).toBe('hi');
    expect(() => r.end()).not.toThrow();
  });

  it('throws QUOTE_MALFORMED on every overrun and on a TPM2B larger than its maximum', () => {
    expect(codeOf(() => new TpmReader(Buffer.alloc(1)).u16())).toBe('QUOTE_MALFORMED');
    expect(codeOf(() => new TpmReader(Buffer.alloc(7)).u64())).toBe('QUOTE_MALFORMED');
    expect(codeOf(() => new TpmReader(Buffer.from('0005abcd', 'hex')).tpm2b(64))).toBe('QUOTE_MALFORMED');
    expect(codeOf(() => new TpmReader(Buffer.from('0003abcdef', 'hex')).tpm2b(2))).toBe('QUOTE_MALFORMED');
    expect(codeOf(() => new TpmReader(Buffer.alloc(2)).end())).toBe('QUOTE_MALFORMED');
  });

  it('reads from a view into a larger buffer without leaking outside it', () => {
    const big = Buffer.from('ffff0001aaff', 'hex');
    const r = new TpmReader(big.subarray(2, 5));
    expect(r.tpm2b(4).toString('hex')).toBe('aa');
    expect(codeOf(() => r.u8())).toBe('QUOTE_MALFORMED');
  });
});
