/**
 * TPM2_Certify: one loaded key (the signer) signs the TPM's statement that another object is
 * loaded in the same TPM, naming it by its TPM name. Both keys need their authValue, each in
 * its own password session; ESYS takes them from what Esys_TR_SetAuth gave it (ak-key.ts).
 */
import { AttestdError } from '../../base/errors.js';
import { TpmWriter } from '../../verify/tpm-reader.js';
import { unwrap2b, type Step } from './ak-key.js';
import { Arena } from './arena.js';
import { sendCommand } from './send.js';
import type { Ptr, Tss } from './tss.js';

/** TPM_ALG_NULL scheme: sign with the key's own scheme. */
const SIG_SCHEME_KEY_DEFAULT = Buffer.from([0x00, 0x10]);

export interface Certification {
  /** TPMS_ATTEST bytes: the contents of the TPM2B_ATTEST, without its size prefix. */
  certifyInfo: Buffer;
  /** Marshalled TPMT_SIGNATURE. */
  signature: Buffer;
}

/** `signer` certifies `object` over `qualifyingData`; or the response code the TPM refused it with. */
export async function certifyObject(tss: Tss, ctx: Ptr, object: number, signer: number, qualifyingData: Buffer): Promise<Step<Certification>> {
  const arena = new Arena(tss);
  try {
    const certifyInfo = arena.output();
    const signature = arena.output();
    const rc = await sendCommand(() => tss.certify(ctx, object, signer, arena.input('TPM2B_DATA', new TpmWriter().tpm2b(qualifyingData).finish()),
      arena.input('TPMT_SIG_SCHEME', SIG_SCHEME_KEY_DEFAULT), { certifyInfo, signature }));
    if (rc !== 0) return { rc, op: 'Esys_Certify' };
    const sig = arena.take(signature, 'TPMT_SIGNATURE');
    if (sig === null) throw new AttestdError('TPM_COMMAND_FAILED', 'Esys_Certify returned no signature');
    return { ok: { certifyInfo: unwrap2b(arena.take(certifyInfo, 'TPM2B_ATTEST'), 'TPM2B_ATTEST'), signature: sig } };
  } finally {
    arena.release();
  }
}
