/**
 * The boot_aggregate entry ties the IMA list to the boot: its file digest is the hash of
 * PCRs 0-7 (and, for non-SHA-1 digests on kernels since 5.8, PCRs 8-9) read from the bank
 * whose algorithm the entry names (security/integrity/ima/ima_crypto.c,
 * ima_calc_boot_aggregate).
 */
import { createHash } from 'node:crypto';
import { AttestdError } from '../../base/errors.js';
import type { PcrBank } from '../pcr.js';
import { digestSize, isHashAlg } from '../tpm-alg.js';
import type { ImaEntry } from './parse.js';
import { BOOT_AGGREGATE_NAME } from './allowlist.js';

/** H(PCR0 || ... || PCR7 [|| PCR8 || PCR9]) in the bank's own algorithm. */
export function bootAggregateDigest(bank: PcrBank, includePcr8And9 = bank.alg !== 'sha1'): Buffer {
  const h = createHash(bank.alg);
  const last = includePcr8And9 ? 9 : 7;
  for (let i = 0; i <= last; i++) {
    const value = bank.values.get(i);
    if (value === undefined || value.length !== digestSize(bank.alg)) {
      throw new AttestdError('INVALID_ARGUMENT', `boot_aggregate needs ${bank.alg} PCR ${i}`);
    }
    h.update(value);
  }
  return h.digest();
}

export interface BootAggregateOptions {
  /** Kernels before 5.8 left PCRs 8-9 out of non-SHA-1 boot aggregates. */
  pre58Kernel?: boolean;
}

/**
 * Checks the boot_aggregate entry against quoted PCRs: the entry is line 1 and named
 * boot_aggregate, not a violation, its digest algorithm is a quoted bank, and its digest
 * equals that bank's aggregate (IMA_REPLAY_MISMATCH otherwise).
 */
export function verifyBootAggregate(
  entry: ImaEntry | undefined,
  quoted: readonly PcrBank[],
  options: BootAggregateOptions = {},
): void {
  if (entry === undefined || entry.line !== 1 || entry.path !== BOOT_AGGREGATE_NAME) {
    throw new AttestdError('IMA_REPLAY_MISMATCH', 'the IMA list does not start with boot_aggregate');
  }
  if (entry.violation) throw new AttestdError('IMA_REPLAY_MISMATCH', 'IMA line 1: boot_aggregate is a measurement violation');
  const alg = entry.digestAlg;
  const bank = isHashAlg(alg) ? quoted.find((b) => b.alg === alg) : undefined;
  if (bank === undefined) {
    throw new AttestdError('IMA_REPLAY_MISMATCH', `IMA line 1: no quoted ${isHashAlg(alg) ? alg : 'matching'} bank for boot_aggregate`);
  }
  const expected = bootAggregateDigest(bank, bank.alg !== 'sha1' && options.pre58Kernel !== true);
  if (!expected.equals(entry.digest)) {
    throw new AttestdError(
      'IMA_REPLAY_MISMATCH',
      `IMA line 1: boot_aggregate ${alg}:${entry.digest.toString('hex')} does not match PCRs (${expected.toString('hex')})`,
    );
  }
}
