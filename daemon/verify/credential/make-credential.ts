/**
 * TPM2_MakeCredential computed off the TPM (TPM 2.0 Part 1, 24: Credential Protection; Part 3,
 * 12.6): a secret that only the TPM holding the endorsement key `ek` can recover, and only by
 * TPM2_ActivateCredential with the key named `objectName` loaded in the same TPM. That is how
 * an enrolling party learns that an attestation key lives beside a known EK, with no TPM of its
 * own.
 *
 *  1. A seed, protected to the EK: for an RSA EK a random seed of the name algorithm's digest
 *     size, RSA-OAEP encrypted with label "IDENTITY"; for an ECC EK an ephemeral key on the
 *     EK's curve, the seed KDFe(Z, "IDENTITY", ephemeral x, EK x).
 *  2. symKey = KDFa(seed, "STORAGE", objectName), the EK's block cipher (AES in CFB mode, zero
 *     IV) over the credential as a TPM2B_DIGEST.
 *  3. HMAC key = KDFa(seed, "INTEGRITY"), an HMAC over the ciphertext and objectName.
 *  4. The credential blob (TPM2B_ID_OBJECT contents) is TPM2B(HMAC) || ciphertext; the secret
 *     (TPM2B_ENCRYPTED_SECRET contents) is the encrypted seed or the ephemeral point.
 */
import { constants, createCipheriv, createECDH, createHmac, publicEncrypt, randomBytes } from 'node:crypto';
import { AttestdError } from '../../base/errors.js';
import { digestSize, TPM_ALG, type HashAlg } from '../tpm-alg.js';
import { TpmWriter } from '../tpm-reader.js';
import { TPMA_OBJECT, type TpmPublicKey } from '../tpm-public.js';
import { kdfa, kdfe } from './kdf.js';

export interface MadeCredential {
  /** TPM2B_ID_OBJECT contents: TPM2B(integrity HMAC) || encrypted credential. */
  credentialBlob: Buffer;
  /** TPM2B_ENCRYPTED_SECRET contents. */
  secret: Buffer;
}

const ECDH_CURVES: Readonly<Record<string, string>> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' };

const invalid = (message: string): never => {
  throw new AttestdError('INVALID_ARGUMENT', message);
};

/** The seed and how it travels, for this EK. */
function protectSeed(ek: TpmPublicKey, random: (n: number) => Buffer): { seed: Buffer; secret: Buffer } {
  const hash = ek.nameAlg;
  const bits = digestSize(hash) * 8;
  if (ek.type === 'rsa') {
    const seed = random(digestSize(hash));
    const secret = publicEncrypt(
      { key: ek.key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash, oaepLabel: Buffer.from('IDENTITY\0', 'latin1') },
      seed,
    );
    return { seed, secret };
  }
  const curve = ECDH_CURVES[ek.curve ?? ''] ?? invalid(`the EK's curve ${String(ek.curve)} is not supported`);
  const jwk = ek.key.export({ format: 'jwk' });
  const ekX = Buffer.from(jwk.x ?? '', 'base64url');
  const ekY = Buffer.from(jwk.y ?? '', 'base64url');
  const ecdh = createECDH(curve);
  ecdh.generateKeys();
  const z = ecdh.computeSecret(Buffer.concat([Buffer.from([4]), ekX, ekY]));
  const point = ecdh.getPublicKey();
  const size = (point.length - 1) / 2;
  const ephX = point.subarray(1, 1 + size);
  const ephY = point.subarray(1 + size);
  const seed = kdfe(hash, z, 'IDENTITY', ephX, ekX, bits);
  return { seed, secret: new TpmWriter().tpm2b(ephX).tpm2b(ephY).finish() };
}

/**
 * Makes a credential for `ek` (a restricted decryption key with an AES-CFB symmetric
 * definition, as every TCG EK template has) and the object named `objectName`.
 */
export function makeCredential(ek: TpmPublicKey, objectName: Uint8Array, credential: Uint8Array,
  random: (n: number) => Buffer = randomBytes): MadeCredential {
  const hash: HashAlg = ek.nameAlg;
  if ((ek.objectAttributes & TPMA_OBJECT.RESTRICTED) === 0 || (ek.objectAttributes & TPMA_OBJECT.DECRYPT) === 0) {
    invalid('the endorsement key is not a restricted decryption key');
  }
  const sym = ek.symmetric;
  if (!sym || sym.alg !== TPM_ALG.AES || sym.mode !== TPM_ALG.CFB || ![128, 192, 256].includes(sym.keyBits)) {
    invalid('the endorsement key does not protect with AES in CFB mode');
  }
  if (credential.length === 0 || credential.length > digestSize(hash)) {
    invalid(`the credential is ${credential.length} bytes; 1 to ${digestSize(hash)} fit this EK`);
  }
  if (objectName.length < 2) invalid('the object name is empty');
  const { seed, secret } = protectSeed(ek, random);
  const keyBits = (sym as { keyBits: number }).keyBits;
  const symKey = kdfa(hash, seed, 'STORAGE', objectName, Buffer.alloc(0), keyBits);
  const cipher = createCipheriv(`aes-${keyBits}-cfb`, symKey, Buffer.alloc(16));
  const encIdentity = Buffer.concat([cipher.update(new TpmWriter().tpm2b(credential).finish()), cipher.final()]);
  const hmacKey = kdfa(hash, seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), digestSize(hash) * 8);
  const integrity = createHmac(hash, hmacKey).update(encIdentity).update(objectName).digest();
  return { credentialBlob: Buffer.concat([new TpmWriter().tpm2b(integrity).finish(), encIdentity]), secret };
}
