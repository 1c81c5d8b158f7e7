// Synthetic AK rotations, certified and signed here as a TPM does (see verify/ak-rotation.ts).
import type { KeyObject } from 'node:crypto';
import { akRotationQualifyingData } from '../../daemon/verify/ak-rotation.js';
import { TPM_ST_ATTEST_CERTIFY } from '../../daemon/verify/tpm-attest.js';
import { parseTpmtPublic, type TpmPublicKey } from '../../daemon/verify/tpm-public.js';
import { TpmWriter } from '../../daemon/verify/tpm-reader.js';
import { AK_ATTRIBUTES, eccTpmtPublic, ecdsaSign, p256 } from './verify-helpers.js';

export interface CertifyFields {
  magic?: number;
  type?: number;
  extraData: Buffer;
  name: Buffer;
  qualifiedName?: Buffer;
}

export function buildCertify(f: CertifyFields): Buffer {
  return new TpmWriter()
    .u32(f.magic ?? 0xff544347)
    .u16(f.type ?? TPM_ST_ATTEST_CERTIFY)
    .tpm2b(Buffer.concat([Buffer.from([0x00, 0x0b]), Buffer.alloc(32, 0xaa)]))
    .tpm2b(f.extraData)
    .u64(42n).u32(3).u32(1).u8(1)
    .u64(0x2016051100162800n)
    .tpm2b(f.name)
    .tpm2b(f.qualifiedName ?? Buffer.concat([Buffer.from([0x00, 0x0b]), Buffer.alloc(32, 0xbb)]))
    .finish();
}

export interface Rotation {
  oldAk: TpmPublicKey;
  newAkPublic: Buffer;
  certifyInfo: Buffer;
  signature: Buffer;
  /** The new AK's key pair, to rotate from again. */
  newKeys: KeyPair;
}

export interface KeyPair {
  publicKey: KeyObject;
  privateKey: KeyObject;
}

/** A rotation as the daemon makes it, with `over` changing what is certified or signed. */
export function rotation(over: { from?: KeyPair; newAttributes?: number; fields?: Partial<CertifyFields>; signWith?: 'old' | 'new' } = {}): Rotation {
  const oldKeys = over.from ?? p256();
  const newKeys = p256();
  const oldAk = parseTpmtPublic(eccTpmtPublic(oldKeys.publicKey));
  const newAkPublic = eccTpmtPublic(newKeys.publicKey, { attributes: over.newAttributes ?? AK_ATTRIBUTES });
  const newAk = parseTpmtPublic(newAkPublic);
  const certifyInfo = buildCertify({ extraData: akRotationQualifyingData(oldAk.name, newAk.name), name: newAk.name, ...over.fields });
  const signer = over.signWith === 'new' ? newKeys.privateKey : oldKeys.privateKey;
  return { oldAk, newAkPublic, certifyInfo, signature: ecdsaSign(signer, certifyInfo, 'sha256', 32), newKeys };
}

