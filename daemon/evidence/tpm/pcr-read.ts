/**
 * Pure pieces of reading PCRs: validating what callers ask for, and matching a
 * TPM2_PCR_Read response (TPML_PCR_SELECTION + TPML_DIGEST) to what was asked.
 *
 * TPM2_PCR_Read returns at most eight digests per response and reports in
 * pcrSelectionOut which ones it returned: banks in request order, PCRs ascending within a
 * bank (TPM 2.0 Part 3, 22.4). The response comes from outside this process, so every
 * count is bounded and every returned PCR must be one that was asked for.
 */
import { AttestdError } from '../../base/errors.js';
import { type PcrBank, type PcrSelection, parsePcrSelection } from '../../verify/pcr.js';
import { digestSize, isHashAlg, type HashAlg } from '../../verify/tpm-alg.js';
import { TpmReader } from '../../verify/tpm-reader.js';

/** PCRs of a PC-client TPM: 0..23. */
export const PCR_COUNT = 24;
/** TPML_DIGEST in a PCR_Read response: at most eight digests (TPM 2.0 Part 2, 10.9.2). */
export const MAX_DIGESTS_PER_READ = 8;
/** Distinct banks a caller may ask for at once: sha1, sha256, sha384, sha512. */
export const MAX_BANKS = 4;
const MAX_DIGEST = 64;

/** Sorted, de-duplicated, bounded selections; INVALID_ARGUMENT otherwise. */
export function normaliseSelections(selections: { alg: HashAlg; pcrs: number[] }[]): PcrSelection[] {
  if (!Array.isArray(selections) || selections.length === 0 || selections.length > MAX_BANKS) {
    throw new AttestdError('INVALID_ARGUMENT', `between 1 and ${MAX_BANKS} PCR banks must be selected`);
  }
  const seen = new Set<HashAlg>();
  return selections.map(({ alg, pcrs }) => {
    if (!isHashAlg(alg)) throw new AttestdError('INVALID_ARGUMENT', `unknown PCR bank ${String(alg)}`);
    if (seen.has(alg)) throw new AttestdError('INVALID_ARGUMENT', `the ${alg} bank is selected twice`);
    seen.add(alg);
    if (!Array.isArray(pcrs) || pcrs.length === 0 || pcrs.length > PCR_COUNT) {
      throw new AttestdError('INVALID_ARGUMENT', `select between 1 and ${PCR_COUNT} ${alg} PCRs`);
    }
    for (const i of pcrs) {
      if (!Number.isInteger(i) || i < 0 || i >= PCR_COUNT) {
        throw new AttestdError('INVALID_ARGUMENT', `PCR index ${String(i)} is outside 0..${PCR_COUNT - 1}`);
      }
    }
    return { alg, pcrs: [...new Set(pcrs)].sort((a, b) => a - b) };
  });
}

/** The digests of a marshalled TPML_DIGEST from a PCR_Read response. */
export function parseDigestList(bytes: Uint8Array): Buffer[] {
  const r = new TpmReader(bytes);
  const count = r.u32();
  if (count > MAX_DIGESTS_PER_READ) {
    throw new AttestdError('TPM_COMMAND_FAILED', `PCR_Read returned ${count} digests, more than ${MAX_DIGESTS_PER_READ}`);
  }
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) out.push(r.tpm2b(MAX_DIGEST, 'TPM2B_DIGEST'));
  r.end('TPML_DIGEST');
  return out;
}

/**
 * Files one PCR_Read response into `banks` and removes what it answered from `pending`.
 * Returns how many PCR values it added; a response naming a PCR that was not pending, or
 * with a digest of the wrong length, is refused.
 */
export function applyPcrRead(
  selectionOut: Uint8Array,
  digestList: Uint8Array,
  pending: PcrSelection[],
  banks: PcrBank[],
): number {
  let returned: PcrSelection[];
  let digests: Buffer[];
  try {
    returned = parsePcrSelection(selectionOut);
    digests = parseDigestList(digestList);
  } catch (err) {
    if (err instanceof AttestdError && err.code === 'TPM_COMMAND_FAILED') throw err;
    throw new AttestdError('TPM_COMMAND_FAILED', `malformed PCR_Read response: ${(err as Error).message}`, { cause: err });
  }
  const total = returned.reduce((n, s) => n + s.pcrs.length, 0);
  if (total !== digests.length) {
    throw new AttestdError('TPM_COMMAND_FAILED', `PCR_Read selected ${total} PCRs but returned ${digests.length} digests`);
  }
  let next = 0;
  for (const sel of returned) {
    const want = pending.find((p) => p.alg === sel.alg);
    const bank = banks.find((b) => b.alg === sel.alg);
    for (const index of sel.pcrs) {
      const at = want?.pcrs.indexOf(index) ?? -1;
      if (want === undefined || bank === undefined || at < 0) {
        throw new AttestdError('TPM_COMMAND_FAILED', `PCR_Read returned ${sel.alg} PCR ${index}, which was not asked for`);
      }
      const value = digests[next++] as Buffer;
      if (value.length !== digestSize(sel.alg)) {
        throw new AttestdError('TPM_COMMAND_FAILED', `PCR_Read returned a ${value.length}-byte ${sel.alg} digest`);
      }
      bank.values.set(index, value);
      want.pcrs.splice(at, 1);
    }
  }
  return total;
}
