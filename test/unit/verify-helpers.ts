// Shared by the verify-*.test.ts files: recorded GCE vTPM quotes and builders for
// synthetic TPM structures signed with keys made here.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants, createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { AttestdError } from '../../daemon/base/errors.js';
import { encodePcrSelection, type PcrBank, type PcrSelection } from '../../daemon/verify/pcr.js';
import { TPM_ALG, hashAlgId, type HashAlg } from '../../daemon/verify/tpm-alg.js';
import { TPMA_OBJECT } from '../../daemon/verify/tpm-public.js';
import { TpmWriter } from '../../daemon/verify/tpm-reader.js';

// ../shared/fixtures beside the repository (see shared/fixtures/SOURCES.md, tpm/gce_cos85_*).
export const TPM_FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures', 'tpm');

export type GceSet = 'nonce9009' | 'nononce';
export const GCE_BANKS = ['sha1', 'sha256', 'sha384'] as const;

export function fixture(name: string): Buffer {
  return readFileSync(join(TPM_FIXTURES, name));
}

export interface GceQuote {
  attest: Buffer;
  signature: Buffer;
  akPublic: Buffer;
  pcrs: PcrBank[];
  nonce: Buffer;
}

export function gceQuote(set: GceSet, bank: (typeof GCE_BANKS)[number]): GceQuote {
  const json = JSON.parse(fixture(`gce_cos85_${set}_pcrs.json`).toString('utf8')) as {
    extraData_hex: string;
    pcrs: Record<string, Record<string, string>>;
  };
  const pcrs: PcrBank[] = Object.entries(json.pcrs).map(([alg, values]) => ({
    alg: alg as HashAlg,
    values: new Map(Object.entries(values).map(([i, hex]) => [Number(i), Buffer.from(hex, 'hex')])),
  }));
  return {
    attest: fixture(`gce_cos85_${set}_quote_${bank}_tpms_attest.bin`),
    signature: fixture(`gce_cos85_${set}_quote_${bank}_tpmt_signature.bin`),
    akPublic: fixture(`gce_cos85_${set}_ak_tpmt_public.bin`),
    pcrs,
    nonce: Buffer.from(json.extraData_hex, 'hex'),
  };
}

export const AK_ATTRIBUTES =
  TPMA_OBJECT.FIXED_TPM | TPMA_OBJECT.FIXED_PARENT | TPMA_OBJECT.SENSITIVE_DATA_ORIGIN |
  TPMA_OBJECT.USER_WITH_AUTH | TPMA_OBJECT.RESTRICTED | TPMA_OBJECT.SIGN_ENCRYPT;

/** A TPMT_PUBLIC for an ECC key, laid out as a TPM would for an AK template. */
export function eccTpmtPublic(
  key: KeyObject,
  opts: { attributes?: number; scheme?: number; schemeHash?: HashAlg; nameAlg?: HashAlg } = {},
): Buffer {
  const jwk = key.export({ format: 'jwk' });
  const curveId = jwk.crv === 'P-384' ? 0x0004 : 0x0003;
  const w = new TpmWriter()
    .u16(TPM_ALG.ECC)
    .u16(hashAlgId(opts.nameAlg ?? 'sha256'))
    .u32(opts.attributes ?? AK_ATTRIBUTES)
    .tpm2b(Buffer.alloc(0))
    .u16(TPM_ALG.NULL);
  const scheme = opts.scheme ?? TPM_ALG.ECDSA;
  w.u16(scheme);
  if (scheme !== TPM_ALG.NULL) w.u16(hashAlgId(opts.schemeHash ?? 'sha256'));
  return w
    .u16(curveId)
    .u16(TPM_ALG.NULL)
    .tpm2b(Buffer.from(jwk.x ?? '', 'base64url'))
    .tpm2b(Buffer.from(jwk.y ?? '', 'base64url'))
    .finish();
}

/** A TPMT_PUBLIC for an RSA key (exponent written as 0 when it is the default). */
export function rsaTpmtPublic(key: KeyObject, opts: { attributes?: number; scheme?: number; schemeHash?: HashAlg } = {}): Buffer {
  const jwk = key.export({ format: 'jwk' });
  const n = Buffer.from(jwk.n ?? '', 'base64url');
  const e = Buffer.from(jwk.e ?? '', 'base64url');
  const exponent = e.readUIntBE(0, e.length);
  const w = new TpmWriter()
    .u16(TPM_ALG.RSA)
    .u16(hashAlgId('sha256'))
    .u32(opts.attributes ?? AK_ATTRIBUTES)
    .tpm2b(Buffer.alloc(0))
    .u16(TPM_ALG.NULL);
  const scheme = opts.scheme ?? TPM_ALG.RSASSA;
  w.u16(scheme);
  if (scheme !== TPM_ALG.NULL) w.u16(hashAlgId(opts.schemeHash ?? 'sha256'));
  return w.u16(n.length * 8).u32(exponent === 65537 ? 0 : exponent).tpm2b(n).finish();
}

export interface AttestFields {
  magic?: number;
  type?: number;
  qualifiedSigner?: Buffer;
  extraData: Buffer;
  selections: PcrSelection[];
  pcrDigest: Buffer;
  /** TPMS_CLOCK_INFO; default clock 123456789, resetCount 7, restartCount 2, safe. */
  clockInfo?: { clock: bigint; resetCount: number; restartCount: number; safe: boolean };
}

export function buildAttest(f: AttestFields): Buffer {
  return new TpmWriter()
    .u32(f.magic ?? 0xff544347)
    .u16(f.type ?? 0x8018)
    .tpm2b(f.qualifiedSigner ?? Buffer.concat([Buffer.from([0x00, 0x0b]), Buffer.alloc(32, 0xaa)]))
    .tpm2b(f.extraData)
    .u64(f.clockInfo?.clock ?? 123456789n)
    .u32(f.clockInfo?.resetCount ?? 7)
    .u32(f.clockInfo?.restartCount ?? 2)
    .u8(f.clockInfo === undefined || f.clockInfo.safe ? 1 : 0)
    .u64(0x2016051100162800n)
    .bytes(encodePcrSelection(f.selections))
    .tpm2b(f.pcrDigest)
    .finish();
}

/** ECDSA TPMT_SIGNATURE; the TPM signs the digest, which node's sign() computes for us. */
export function ecdsaSign(key: KeyObject, data: Buffer, hash: HashAlg, size: number): Buffer {
  const rs = sign(hash, data, { key, dsaEncoding: 'ieee-p1363' });
  return new TpmWriter()
    .u16(TPM_ALG.ECDSA)
    .u16(hashAlgId(hash))
    .tpm2b(rs.subarray(0, size))
    .tpm2b(rs.subarray(size))
    .finish();
}

export function rsaSign(key: KeyObject, data: Buffer, hash: HashAlg, pss: boolean): Buffer {
  const sig = pss
    ? sign(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
    : sign(hash, data, key);
  return new TpmWriter().u16(pss ? TPM_ALG.RSAPSS : TPM_ALG.RSASSA).u16(hashAlgId(hash)).tpm2b(sig).finish();
}

/** PCR banks with deterministic values for the given PCR indices. */
export function syntheticBanks(algs: HashAlg[], pcrs: number[]): PcrBank[] {
  return algs.map((alg) => ({
    alg,
    values: new Map(pcrs.map((i) => [i, createHash(alg).update(`${alg}/${i}`).digest()])),
  }));
}

export function p256(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

export function flipBit(b: Buffer, byteIndex: number, bit = 0): Buffer {
  const out = Buffer.from(b);
  out[byteIndex] = (out[byteIndex] ?? 0) ^ (1 << bit);
  return out;
}

/** The AttestdError code `fn` throws, or undefined if it returns; anything else is rethrown. */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof AttestdError) return err.code;
    throw err;
  }
  return undefined;
}
