/**
 * The endorsement key templates of the TCG EK Credential Profile (2.0, templates L-1 and L-2):
 * RSA 2048 and ECC NIST P-256, restricted decryption, AES-128-CFB for children, SHA-256 name,
 * used only under the policy PolicySecret(TPM_RH_ENDORSEMENT), with a zero-filled unique
 * field. CreatePrimary of these bytes in the endorsement hierarchy gives the very EK that the
 * manufacturer certified (and that tpm2_createek makes), so it is never stored.
 */
import { TPM_ALG, TPM_ECC_CURVE } from '../../verify/tpm-alg.js';
import { TPMA_OBJECT } from '../../verify/tpm-public.js';
import { TpmWriter } from '../../verify/tpm-reader.js';

export type EkKind = 'rsa' | 'ecc';

const EK_ATTRIBUTES =
  TPMA_OBJECT.FIXED_TPM |
  TPMA_OBJECT.FIXED_PARENT |
  TPMA_OBJECT.SENSITIVE_DATA_ORIGIN |
  TPMA_OBJECT.ADMIN_WITH_POLICY |
  TPMA_OBJECT.RESTRICTED |
  TPMA_OBJECT.DECRYPT;

/** PolicySecret(TPM_RH_ENDORSEMENT) with SHA-256: the EK's authPolicy. */
export const EK_POLICY = Buffer.from('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa', 'hex');

/** The template as TPM2B_PUBLIC, the form Esys_CreatePrimary takes. */
export function ekTemplate2b(kind: EkKind): Buffer {
  const w = new TpmWriter()
    .u16(kind === 'rsa' ? TPM_ALG.RSA : TPM_ALG.ECC)
    .u16(TPM_ALG.SHA256)
    .u32(EK_ATTRIBUTES)
    .tpm2b(EK_POLICY)
    .u16(TPM_ALG.AES)
    .u16(128)
    .u16(TPM_ALG.CFB)
    .u16(TPM_ALG.NULL); // scheme
  if (kind === 'rsa') w.u16(2048).u32(0).tpm2b(Buffer.alloc(256));
  else w.u16(TPM_ECC_CURVE.NIST_P256).u16(TPM_ALG.NULL).tpm2b(Buffer.alloc(32)).tpm2b(Buffer.alloc(32));
  return new TpmWriter().tpm2b(w.finish()).finish();
}
