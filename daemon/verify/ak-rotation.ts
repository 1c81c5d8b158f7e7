/**
 * An attestation key rotation: the old AK certifies the new one with TPM2_Certify. The TPM
 * signs a certification only of an object loaded in itself, and names the object by its TPM
 * name, which is the digest of its whole public area (attributes included); signed by a
 * restricted key, the TPMS_ATTEST is the TPM's own statement. So whoever trusts the old AK
 * learns that the new key lives in the same TPM with exactly the public area recorded. The
 * qualifying data ties the certification to this use, and to both keys, so that a
 * certification made for anything else cannot stand for a rotation.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { asAttestdError, AttestdError } from '../base/errors.js';
import { parseCertifyAttest, type CertifyAttest } from './tpm-attest.js';
import { parseTpmtPublic, TPMA_OBJECT, type TpmPublicKey } from './tpm-public.js';
import { parseTpmtSignature, verifyTpmSignature } from './tpm-signature.js';

export const AK_ROTATION_CONTEXT = Buffer.from('attestd/ak-rotation/v1', 'ascii');

/** The attributes every attestd AK has, and which the old AK must see in the new one. */
const REQUIRED = TPMA_OBJECT.FIXED_TPM | TPMA_OBJECT.FIXED_PARENT | TPMA_OBJECT.SENSITIVE_DATA_ORIGIN |
  TPMA_OBJECT.RESTRICTED | TPMA_OBJECT.SIGN_ENCRYPT;

/** SHA-256("attestd/ak-rotation/v1" || old AK name || new AK name): the certification's qualifying data. */
export function akRotationQualifyingData(oldName: Uint8Array, newName: Uint8Array): Buffer {
  return createHash('sha256').update(AK_ROTATION_CONTEXT).update(oldName).update(newName).digest();
}

export interface AkRotationInput {
  /** The AK trusted until the rotation. */
  oldAk: TpmPublicKey;
  /** TPMT_PUBLIC of the new AK, as recorded. */
  newAkPublic: Uint8Array;
  /** TPMS_ATTEST bytes of the certification. */
  certifyInfo: Uint8Array;
  /** TPMT_SIGNATURE by the old AK over `certifyInfo`. */
  signature: Uint8Array;
}

/**
 * The new AK, once the rotation verifies; AK_ROTATION_INVALID naming the first check that
 * failed otherwise:
 *  1. the old AK is a restricted signing key (only it makes the TPM's word out of a signature);
 *  2. the new public area parses and has the attributes of an attestd AK (fixed to the TPM and
 *     its parent, made inside it, restricted, signing, never decrypting);
 *  3. the signature parses, uses the old AK's fixed scheme, and verifies over the raw bytes;
 *  4. the bytes parse as a certification (TPM_GENERATED_VALUE, TPM_ST_ATTEST_CERTIFY, bounded);
 *  5. its extraData is the rotation's qualifying data for these two keys;
 *  6. the name it certifies is the new AK's name.
 */
export function verifyAkRotation(input: AkRotationInput): TpmPublicKey {
  const { oldAk } = input;
  if (!isRestrictedSigner(oldAk.objectAttributes)) invalid('the old attestation key is not a restricted signing key');
  const newAk = parse('new attestation key', () => parseTpmtPublic(input.newAkPublic));
  if ((newAk.objectAttributes & REQUIRED) !== REQUIRED || !isRestrictedSigner(newAk.objectAttributes)) {
    invalid('the new key lacks the attributes of an attestation key (fixedTPM, fixedParent, sensitiveDataOrigin, restricted, sign)');
  }
  const sig = parse('certification signature', () => parseTpmtSignature(input.signature));
  if (oldAk.scheme && (oldAk.scheme.alg !== sig.sigAlg || oldAk.scheme.hash !== sig.hash)) {
    invalid(`the certification is signed with ${sig.sigAlg}/${sig.hash}, not the old key's ${oldAk.scheme.alg}/${oldAk.scheme.hash ?? '-'}`);
  }
  if (sig.hash === 'sha1') invalid('the certification is signed over a SHA-1 digest');
  if (!verifyTpmSignature(oldAk, input.certifyInfo, sig)) invalid('the certification signature does not verify with the old attestation key');
  const info: CertifyAttest = parse('certification', () => parseCertifyAttest(input.certifyInfo));
  if (!sameBytes(info.extraData, akRotationQualifyingData(oldAk.name, newAk.name))) {
    invalid('the certification does not carry the qualifying data of a rotation from the old key to the new one');
  }
  if (!sameBytes(info.name, newAk.name)) invalid('the certification names another key than the new attestation key');
  return newAk;
}

function isRestrictedSigner(attributes: number): boolean {
  return (attributes & TPMA_OBJECT.RESTRICTED) !== 0 && (attributes & TPMA_OBJECT.SIGN_ENCRYPT) !== 0 &&
    (attributes & TPMA_OBJECT.DECRYPT) === 0;
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function parse<T>(what: string, run: () => T): T {
  try {
    return run();
  } catch (err) {
    invalid(`the ${what} does not parse: ${asAttestdError(err).message}`);
  }
}

function invalid(message: string): never {
  throw new AttestdError('AK_ROTATION_INVALID', message);
}
