/**
 * The MEASUREMENTS signature. In SPDM 1.1 the responder signs L1, the concatenation of the
 * GET_MEASUREMENTS request and the MEASUREMENTS response up to (not including) the signature
 * field, hashed with the negotiated algorithm; NVIDIA devices use ECDSA P-384 with SHA-384
 * and send r || s (48 bytes each, big-endian). SPDM 1.2 added a signing-context prefix; 1.1
 * has none, which is why spdm.ts accepts 1.1 only.
 */
import { verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { AttestdError } from '../../base/errors.js';
import type { SpdmFrame } from './spdm.js';

export function verifyMeasurementSignature(frame: SpdmFrame, leafKey: KeyObject): void {
  if (leafKey.asymmetricKeyType !== 'ec' || leafKey.asymmetricKeyDetails?.namedCurve !== 'secp384r1') {
    throw new AttestdError('GPU_REPORT_SIGNATURE_INVALID', 'the attestation key is not ECDSA P-384');
  }
  let ok: boolean;
  try {
    ok = cryptoVerify('sha384', frame.signed, { key: leafKey, dsaEncoding: 'ieee-p1363' }, frame.signature);
  } catch (err) {
    throw new AttestdError('GPU_REPORT_SIGNATURE_INVALID', 'the measurement signature could not be checked', { cause: err });
  }
  if (!ok) {
    throw new AttestdError('GPU_REPORT_SIGNATURE_INVALID', 'the measurement signature does not verify with the leaf certificate key over request || response');
  }
}
