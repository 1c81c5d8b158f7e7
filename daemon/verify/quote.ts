/**
 * Verification of a TPM2_Quote: a signed TPMS_ATTEST, the PCR values it claims to cover,
 * and the attestation key (AK) that signed it. Pure: no I/O, shared with the offline
 * verifier. What comes back has been checked; nothing else from the inputs is returned.
 */
import { timingSafeEqual } from 'node:crypto';
import { AttestdError } from '../base/errors.js';
import { pcrDigest, type PcrBank } from './pcr.js';
import { parseQuoteAttest, type QuoteAttest } from './tpm-attest.js';
import { TPMA_OBJECT, type TpmPublicKey } from './tpm-public.js';
import { parseTpmtSignature, verifyTpmSignature } from './tpm-signature.js';

export interface VerifiedQuote {
  attest: QuoteAttest;
  /** Only the quoted PCRs, bank by bank in the quote's selection order. */
  banks: PcrBank[];
}

export interface QuoteInput {
  /** TPMS_ATTEST bytes exactly as the TPM returned them. */
  attest: Uint8Array;
  /** TPMT_SIGNATURE bytes. */
  signature: Uint8Array;
  /** Presented PCR values; values the quote does not cover are ignored and not returned. */
  pcrs: PcrBank[];
  ak: TpmPublicKey;
  /** The qualifying data the TPM was asked to include (may be empty). */
  expectedNonce: Uint8Array;
  /**
   * Accept a quote signed over a SHA-1 digest. Off by default: SHA-1 collisions are
   * practical, and any TPM that can sign with SHA-256 should.
   */
  allowSha1Signature?: boolean;
}

/**
 * Verifies a quote. The checks, in order; the first that fails throws AttestdError:
 *  1. the signature parses as a TPMT_SIGNATURE of a supported scheme
 *     (QUOTE_MALFORMED, QUOTE_UNSUPPORTED_ALGORITHM);
 *  2. its hash is not SHA-1 unless `allowSha1Signature` (QUOTE_UNSUPPORTED_ALGORITHM);
 *  3. if the AK fixes a signing scheme, the signature uses that scheme and hash
 *     (QUOTE_BAD_SIGNATURE);
 *  4. the signature verifies with the AK over the raw attest bytes, before any of them is
 *     parsed or believed (QUOTE_BAD_SIGNATURE);
 *  5. the AK is a restricted signing key, not a decryption key, so the TPM itself vouches
 *     that what it signed with TPM_GENERATED_VALUE came from the TPM (QUOTE_KEY_NOT_RESTRICTED);
 *  6. the attest bytes parse as a TPMS_ATTEST with TPM_GENERATED_VALUE, of type
 *     TPM_ST_ATTEST_QUOTE, with nothing left over (QUOTE_BAD_MAGIC, QUOTE_WRONG_TYPE,
 *     QUOTE_MALFORMED, QUOTE_UNSUPPORTED_ALGORITHM);
 *  7. extraData equals `expectedNonce`, compared in constant time (QUOTE_NONCE_MISMATCH);
 *  8. every quoted PCR is presented, once per bank, with its bank's digest length
 *     (QUOTE_PCR_SELECTION_MISMATCH);
 *  9. the hash of the presented values, with the signature's hash algorithm (the one
 *     TPM2_Quote uses), equals the quoted pcrDigest (QUOTE_PCR_DIGEST_MISMATCH).
 * Not checked here: qualifiedSigner (it depends on the AK's parent chain) and clock
 * freshness; both are for the caller's policy.
 */
export function verifyQuote(input: QuoteInput): VerifiedQuote {
  const { ak } = input;
  const sig = parseTpmtSignature(input.signature);

  if (sig.hash === 'sha1' && input.allowSha1Signature !== true) {
    throw new AttestdError('QUOTE_UNSUPPORTED_ALGORITHM', 'the quote is signed over a SHA-1 digest');
  }
  if (ak.scheme && (ak.scheme.alg !== sig.sigAlg || ak.scheme.hash !== sig.hash)) {
    throw new AttestdError(
      'QUOTE_BAD_SIGNATURE',
      `the signature uses ${sig.sigAlg}/${sig.hash} but the AK is fixed to ${ak.scheme.alg}/${ak.scheme.hash ?? '-'}`,
    );
  }
  if (!verifyTpmSignature(ak, input.attest, sig)) {
    throw new AttestdError('QUOTE_BAD_SIGNATURE');
  }
  const attributes = ak.objectAttributes;
  const restrictedSigner =
    (attributes & TPMA_OBJECT.RESTRICTED) !== 0 &&
    (attributes & TPMA_OBJECT.SIGN_ENCRYPT) !== 0 &&
    (attributes & TPMA_OBJECT.DECRYPT) === 0;
  if (!restrictedSigner || !ak.restricted || !ak.sign) {
    // An unrestricted key signs any bytes, including a forged TPMS_ATTEST.
    throw new AttestdError('QUOTE_KEY_NOT_RESTRICTED', 'the signing key is not a restricted signing key');
  }

  const attest = parseQuoteAttest(input.attest);

  const nonce = Buffer.from(input.expectedNonce);
  if (attest.extraData.length !== nonce.length || !timingSafeEqual(attest.extraData, nonce)) {
    throw new AttestdError('QUOTE_NONCE_MISMATCH');
  }

  const digest = pcrDigest(attest.pcrSelections, input.pcrs, sig.hash);
  if (digest.length !== attest.pcrDigest.length || !timingSafeEqual(digest, attest.pcrDigest)) {
    throw new AttestdError('QUOTE_PCR_DIGEST_MISMATCH');
  }

  const banks: PcrBank[] = attest.pcrSelections.map((sel) => {
    const source = input.pcrs.find((b) => b.alg === sel.alg);
    const values = new Map<number, Buffer>();
    for (const index of sel.pcrs) {
      // pcrDigest above has established that each of these is present with the right size.
      const value = source?.values.get(index);
      if (value) values.set(index, Buffer.from(value));
    }
    return { alg: sel.alg, values };
  });
  return { attest, banks };
}
