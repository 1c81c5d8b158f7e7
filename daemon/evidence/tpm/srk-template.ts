/**
 * The storage root key the AK lives under: a primary key in the owner (storage) hierarchy,
 * derived from the hierarchy seed and this template alone, so the same bytes give the same
 * key on the same TPM after every restart and nothing of it is stored. Anyone who can use the
 * owner hierarchy can re-create it; that is harmless, as it only wraps the AK's private part
 * and the AK's use needs the AK's own authValue.
 *
 * The TCG's ECC P-256 storage key: restricted decryption, AES-128-CFB for its children, name
 * algorithm SHA-256, empty authValue and policy, `noDA` (an empty secret is no secret to guess),
 * empty unique field; `tpm2_createprimary -C o -G ecc256:null:aes128cfb
 *   -a "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt"`.
 */
import { TPM_ALG, TPM_ECC_CURVE } from '../../verify/tpm-alg.js';
import { TPMA_OBJECT } from '../../verify/tpm-public.js';
import { TpmWriter } from '../../verify/tpm-reader.js';

const SRK_ATTRIBUTES =
  TPMA_OBJECT.FIXED_TPM |
  TPMA_OBJECT.FIXED_PARENT |
  TPMA_OBJECT.SENSITIVE_DATA_ORIGIN |
  TPMA_OBJECT.USER_WITH_AUTH |
  TPMA_OBJECT.NO_DA |
  TPMA_OBJECT.RESTRICTED |
  TPMA_OBJECT.DECRYPT;

/** The template as TPM2B_PUBLIC, the form Esys_CreatePrimary takes. */
export function srkTemplate2b(): Buffer {
  const area = new TpmWriter()
    .u16(TPM_ALG.ECC) // type
    .u16(TPM_ALG.SHA256) // nameAlg
    .u32(SRK_ATTRIBUTES) // objectAttributes
    .tpm2b(Buffer.alloc(0)) // authPolicy: none
    .u16(TPM_ALG.AES) // parameters.symmetric.algorithm
    .u16(128) // parameters.symmetric.keyBits
    .u16(TPM_ALG.CFB) // parameters.symmetric.mode
    .u16(TPM_ALG.NULL) // parameters.scheme: a storage key has none
    .u16(TPM_ECC_CURVE.NIST_P256) // parameters.curveID
    .u16(TPM_ALG.NULL) // parameters.kdf
    .tpm2b(Buffer.alloc(0)) // unique.x
    .tpm2b(Buffer.alloc(0)) // unique.y
    .finish();
  return new TpmWriter().tpm2b(area).finish();
}
