/**
 * Replays PCR 10 from IMA entries, bank by bank, the way the kernel extends it
 * (security/integrity/ima/ima_queue.c, ima_api.c):
 *
 * - a bank whose algorithm is that of the listed template hash is extended with that hash;
 * - every other bank with its own hash of the serialised template data (kernels since 5.8;
 *   older kernels extended the SHA-1 template hash zero-padded, opt-in as `sha1PaddedBanks`);
 * - a measurement violation (all-zero template hash) extends all ones of the bank's size.
 */
import { hash } from 'node:crypto';
import { AttestdError } from '../../base/errors.js';
import type { PcrBank } from '../pcr.js';
import { digestSize, isHashAlg, type HashAlg } from '../tpm-alg.js';
import type { ImaEntry } from './parse.js';

export const IMA_PCR = 10;

export interface ImaReplayOptions {
  /** Banks to replay, e.g. ['sha256', 'sha384']. */
  banks: readonly HashAlg[];
  /** PCR 10 values to extend from (a previous replay); default all zeros. */
  start?: ReadonlyMap<HashAlg, Buffer>;
  /** Pre-5.8 kernels: non-SHA-1 banks extended with the SHA-1 template hash, zero-padded. */
  sha1PaddedBanks?: boolean;
}

export interface ImaReplay {
  pcr10: Map<HashAlg, Buffer>;
  entries: number;
  violations: number;
}

/**
 * Extends PCR 10 per bank with every entry. Refuses (IMA_MALFORMED) an entry recorded in
 * another PCR, since nothing here could check it against a quote.
 */
export function replayImaPcr10(entries: readonly ImaEntry[], options: ImaReplayOptions): ImaReplay {
  const banks = checkedBanks(options.banks);
  const pcr10 = new Map<HashAlg, Buffer>();
  for (const alg of banks) {
    const from = options.start?.get(alg);
    if (from !== undefined && from.length !== digestSize(alg)) {
      throw new AttestdError('INVALID_ARGUMENT', `start value for the ${alg} bank is ${from.length} bytes`);
    }
    pcr10.set(alg, from === undefined ? Buffer.alloc(digestSize(alg)) : Buffer.from(from));
  }
  // One scratch buffer a bank holds PCR || value for the one-shot hash of each extend.
  const scratch = banks.map((alg) => ({ alg, size: digestSize(alg), buf: Buffer.alloc(2 * digestSize(alg)) }));
  for (const s of scratch) pcr10.get(s.alg)?.copy(s.buf, 0);
  let violations = 0;
  for (const entry of entries) {
    if (entry.pcr !== IMA_PCR) {
      throw new AttestdError('IMA_MALFORMED', `IMA line ${entry.line}: entry extends PCR ${entry.pcr}, only PCR 10 is replayed`);
    }
    if (entry.violation) violations++;
    for (const s of scratch) {
      bankTemplateHash(entry, s.alg, options.sha1PaddedBanks === true).copy(s.buf, s.size);
      hash(s.alg, s.buf, 'buffer').copy(s.buf, 0);
    }
  }
  for (const s of scratch) pcr10.set(s.alg, Buffer.from(s.buf.subarray(0, s.size)));
  return { pcr10, entries: entries.length, violations };
}

/** What the kernel extends into the `alg` bank for this entry. */
export function bankTemplateHash(entry: ImaEntry, alg: HashAlg, sha1Padded = false): Buffer {
  const size = digestSize(alg);
  if (entry.violation) return Buffer.alloc(size, 0xff);
  if (sha1Padded) {
    const out = Buffer.alloc(size);
    entry.templateHash.copy(out, 0, 0, Math.min(size, entry.templateHash.length));
    return out;
  }
  if (alg === entry.templateHashAlg) return entry.templateHash;
  return hash(alg, entry.templateData, 'buffer');
}

/**
 * Every replayed bank must be quoted with a PCR 10 equal to the replay, else
 * IMA_REPLAY_MISMATCH naming the bank and both values.
 */
export function compareImaPcr10(pcr10: ReadonlyMap<HashAlg, Buffer>, quoted: readonly PcrBank[]): void {
  for (const [alg, value] of pcr10) {
    const banks = quoted.filter((b) => b.alg === alg);
    if (banks.length > 1) throw new AttestdError('IMA_REPLAY_MISMATCH', `the ${alg} bank is presented more than once`);
    const expected = banks[0]?.values.get(IMA_PCR);
    if (expected === undefined) {
      throw new AttestdError('IMA_REPLAY_MISMATCH', `no quoted ${alg} PCR 10 to compare the IMA replay with`);
    }
    if (!expected.equals(value)) {
      throw new AttestdError(
        'IMA_REPLAY_MISMATCH',
        `IMA list replays ${alg} PCR 10 to ${value.toString('hex')}, quoted ${expected.toString('hex')}`,
      );
    }
  }
}

export interface ImaVerifyReplayOptions extends ImaReplayOptions {
  /** A SHA-1 bank is weak evidence; replaying it against a quote must be asked for. */
  allowSha1Bank?: boolean;
}

/**
 * Replays `entries` (already parsed, so template hashes are checked) and compares every
 * requested bank's PCR 10 with the quoted value (IMA_REPLAY_MISMATCH). The SHA-1 bank is
 * compared only with `allowSha1Bank` (INVALID_ARGUMENT otherwise).
 */
export function verifyImaReplay(
  entries: readonly ImaEntry[],
  quoted: readonly PcrBank[],
  options: ImaVerifyReplayOptions,
): ImaReplay {
  if (options.banks.includes('sha1') && options.allowSha1Bank !== true) {
    throw new AttestdError('INVALID_ARGUMENT', 'replaying the SHA-1 bank needs allowSha1Bank');
  }
  const replay = replayImaPcr10(entries, options);
  compareImaPcr10(replay.pcr10, quoted);
  return replay;
}

export function checkedBanks(banks: readonly HashAlg[]): HashAlg[] {
  if (banks.length === 0) throw new AttestdError('INVALID_ARGUMENT', 'at least one PCR bank must be replayed');
  const out: HashAlg[] = [];
  for (const alg of banks) {
    if (!isHashAlg(alg)) throw new AttestdError('INVALID_ARGUMENT', 'unknown PCR bank algorithm');
    if (out.includes(alg)) throw new AttestdError('INVALID_ARGUMENT', `the ${alg} bank is named twice`);
    out.push(alg);
  }
  return out;
}
