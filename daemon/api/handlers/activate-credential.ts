import type { attestd } from '../../gen/proto.js';
import { AttestdError } from '../../base/errors.js';
import type { Handler } from '../handler.js';

const MAX_PART = 1024;
const MAX_NAME = 2 + 64;

/**
 * Enrollment's one step on the host: the TPM recovers a credential made for this daemon's AK.
 * Only root or the daemon's own user may ask (it spends TPM time, and the credential it
 * recovers is the enrolling party's proof of this host).
 */
export const activateCredential: Handler<attestd.lease.v1.ActivateCredentialRequest.$Properties> = async (conn, req, ctx) => {
  const uid = conn.peer.uid;
  if (uid !== 0 && uid !== process.getuid?.()) {
    throw new AttestdError('PERMISSION_DENIED', 'only root or the daemon\'s own user may activate an enrollment credential');
  }
  const kind = req.ekKind;
  if (kind !== 'rsa' && kind !== 'ecc') throw new AttestdError('MALFORMED_REQUEST', 'ek_kind must be "rsa" or "ecc"');
  const part = (b: Uint8Array | null | undefined, what: string, min: number, max: number): Buffer => {
    if (!b || b.length < min || b.length > max) throw new AttestdError('MALFORMED_REQUEST', `${what}: ${min} to ${max} bytes`);
    return Buffer.from(b);
  };
  const credential = await ctx.enroll.activateCredential(kind, part(req.akName, 'ak_name', 4, MAX_NAME),
    part(req.credentialBlob, 'credential_blob', 1, MAX_PART), part(req.secret, 'secret', 1, MAX_PART));
  return { activateCredential: { credential } };
};
