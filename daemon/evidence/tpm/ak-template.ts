/**
 * The attestation key's creation template (TPM 2.0 Part 2, TPMT_PUBLIC with TPMS_ECC_PARMS).
 *
 * The AK is an ordinary key, created once under the storage root key (srk-template.ts) with a
 * random 32-byte authValue that only the daemon holds (ak-store.ts): a process that can open
 * the TPM can re-create the storage root key but not the AK, and cannot sign with the AK even
 * where it can reach the loaded object (a TPM without a resource manager shares transient
 * handles), because every use needs the authValue. Its secret is high-entropy, so the key is
 * `noDA`: its use never counts towards the TPM's dictionary-attack lockout and is not stopped
 * by it, and an unorderly shutdown after its use adds nothing to the lockout counter.
 *
 * ECC NIST P-256, restricted signing, ECDSA with SHA-256, name algorithm SHA-256, empty auth
 * policy (use is by authValue alone), no symmetric parameters, empty unique field: the key
 * `tpm2_create -G ecc256:ecdsa-sha256:null
 *   -a "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|sign"` builds.
 */
import { TPM_ALG, TPM_ECC_CURVE } from '../../verify/tpm-alg.js';
import { TPMA_OBJECT } from '../../verify/tpm-public.js';
import { TpmWriter } from '../../verify/tpm-reader.js';

export const AK_ATTRIBUTES =
  TPMA_OBJECT.FIXED_TPM |
  TPMA_OBJECT.FIXED_PARENT |
  TPMA_OBJECT.SENSITIVE_DATA_ORIGIN |
  TPMA_OBJECT.USER_WITH_AUTH |
  TPMA_OBJECT.NO_DA |
  TPMA_OBJECT.RESTRICTED |
  TPMA_OBJECT.SIGN_ENCRYPT;

/** Marshalled TPMT_PUBLIC of the AK template (no size prefix). */
export function akTemplate(): Buffer {
  return new TpmWriter()
    .u16(TPM_ALG.ECC) // type
    .u16(TPM_ALG.SHA256) // nameAlg
    .u32(AK_ATTRIBUTES) // objectAttributes
    .tpm2b(Buffer.alloc(0)) // authPolicy: none
    .u16(TPM_ALG.NULL) // parameters.symmetric: a signing key has no symmetric part
    .u16(TPM_ALG.ECDSA) // parameters.scheme
    .u16(TPM_ALG.SHA256) // parameters.scheme.details.hashAlg
    .u16(TPM_ECC_CURVE.NIST_P256) // parameters.curveID
    .u16(TPM_ALG.NULL) // parameters.kdf
    .tpm2b(Buffer.alloc(0)) // unique.x
    .tpm2b(Buffer.alloc(0)) // unique.y
    .finish();
}

/** The template as TPM2B_PUBLIC, the form Esys_Create takes. */
export function akTemplate2b(): Buffer {
  return new TpmWriter().tpm2b(akTemplate()).finish();
}

/**
 * Whether a created key's TPMT_PUBLIC carries the template's type, algorithms and
 * attributes: everything up to the unique field, which the TPM fills with the public point.
 */
export function matchesAkTemplate(publicArea: Buffer): boolean {
  const template = akTemplate();
  const fixed = template.length - 4; // the two empty TPM2Bs of unique
  return publicArea.length > template.length && publicArea.subarray(0, fixed).equals(template.subarray(0, fixed));
}
