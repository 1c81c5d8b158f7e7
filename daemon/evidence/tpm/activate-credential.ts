/**
 * TPM2_ActivateCredential with the attestation key and the endorsement key: the TPM recovers
 * the secret an enrolling party sealed to the EK for the AK's name (see
 * verify/credential/make-credential.ts) only if the AK named is loaded in this very TPM. The
 * EK is made from its standard template for the moment and used under its policy,
 * PolicySecret of the endorsement hierarchy in a policy session; both are flushed afterwards.
 */
import { TpmWriter } from '../../verify/tpm-reader.js';
import { unwrap2b, withPrimary, type Step } from './ak-key.js';
import { Arena, readU32 } from './arena.js';
import { ekTemplate2b, type EkKind } from './ek-template.js';
import { sendCommand } from './send.js';
import { ESYS_TR, type Ptr, type Tss } from './tss.js';

const TPM2_SE_POLICY = 0x01;
const TPM_ALG_SHA256 = 0x000b;
const SYM_NULL = Buffer.from([0x00, 0x10]);

/** Runs `job` with the EK of `kind` loaded, flushed afterwards. */
function withEk<T>(tss: Tss, ctx: Ptr, kind: EkKind, job: (ek: number) => Promise<Step<T>>): Promise<Step<T>> {
  return withPrimary(tss, ctx, ESYS_TR.RH_ENDORSEMENT, ekTemplate2b(kind), `${kind} EK`, job);
}

/** The policy session that satisfies the EK's policy. */
async function withEkPolicy<T>(tss: Tss, ctx: Ptr, job: (session: number) => Promise<Step<T>>): Promise<Step<T>> {
  const arena = new Arena(tss);
  let session: number;
  try {
    const slot = arena.value();
    const rc = await sendCommand(() => tss.startAuthSession(ctx, TPM2_SE_POLICY, arena.input('TPMT_SYM_DEF', SYM_NULL), TPM_ALG_SHA256, slot));
    if (rc !== 0) return { rc, op: 'Esys_StartAuthSession(policy)' };
    session = readU32(slot);
  } finally {
    arena.release();
  }
  try {
    const arena2 = new Arena(tss);
    try {
      const rc = await sendCommand(() => tss.policySecret(ctx, ESYS_TR.RH_ENDORSEMENT, session, { timeout: arena2.output(), ticket: arena2.output() }));
      if (rc !== 0) return { rc, op: 'Esys_PolicySecret(endorsement)' };
    } finally {
      arena2.release();
    }
    return await job(session);
  } finally {
    await tss.flushContext(ctx, session).catch(() => 0);
  }
}

/** The credential recovered by the TPM, or the response code it refused with. */
export function activateCredential(tss: Tss, ctx: Ptr, ak: number, kind: EkKind, credentialBlob: Buffer, secret: Buffer): Promise<Step<Buffer>> {
  return withEk(tss, ctx, kind, (ek) => withEkPolicy(tss, ctx, async (session): Promise<Step<Buffer>> => {
    const arena = new Arena(tss);
    try {
      const certInfo = arena.output();
      const rc = await tss.activateCredential(ctx, ak, ek, session,
        arena.input('TPM2B_ID_OBJECT', new TpmWriter().tpm2b(credentialBlob).finish()),
        arena.input('TPM2B_ENCRYPTED_SECRET', new TpmWriter().tpm2b(secret).finish()), { certInfo });
      if (rc !== 0) return { rc, op: 'Esys_ActivateCredential' };
      return { ok: unwrap2b(arena.take(certInfo, 'TPM2B_DIGEST'), 'TPM2B_DIGEST') };
    } finally {
      arena.release();
    }
  }));
}
