/**
 * Incremental appraisal of a growing IMA list. The kernel only ever appends to the list
 * until reboot, so a caller that re-reads it keeps a small state (entries and bytes already
 * replayed, PCR 10 per bank so far, a hash of the last line) and only the new tail is
 * parsed and replayed. The state may have been stored, so it is checked like any input; a
 * list that no longer extends the recorded one (reboot, reset) is replayed from the start
 * and the result says so.
 */
import { createHash } from 'node:crypto';
import { AttestdError } from '../../base/errors.js';
import { digestSize, type HashAlg } from '../tpm-alg.js';
import { IMA_MAX_ENTRIES, parseImaLines, type ImaEntry, type ImaParseOptions } from './parse.js';
import { checkedBanks, replayImaPcr10 } from './replay.js';
import { NEWLINE, indexIn, lastIndexIn } from './text.js';

export interface ImaAppraisalState {
  entriesSeen: number;
  byteOffset: number;
  pcr10: Map<HashAlg, Buffer>;
  /** SHA-256 of the last replayed line, newline included. */
  lastLineHash?: Buffer;
}

export interface ImaIncrementInput {
  /** The list as re-read: the whole list, or only its tail when `tailOffset` is given. */
  list: Uint8Array | string;
  /** Byte offset of `list` in the whole list; must equal the state's byteOffset. */
  tailOffset?: number;
  /** Entries before `list` when it is a tail; must equal the state's entriesSeen. */
  tailFirstEntry?: number;
  banks: readonly HashAlg[];
  sha1PaddedBanks?: boolean;
  limits?: Omit<ImaParseOptions, 'firstLine'>;
}

export interface ImaIncrement {
  state: ImaAppraisalState;
  /** Entries parsed and replayed by this call (all of them after a restart). */
  newEntries: ImaEntry[];
  restarted: boolean;
  restartReason?: string;
  /** Bytes of an unterminated last line left for the next call. */
  pendingBytes: number;
}

export function initialImaState(banks: readonly HashAlg[]): ImaAppraisalState {
  return { entriesSeen: 0, byteOffset: 0, pcr10: new Map(checkedBanks(banks).map((alg) => [alg, Buffer.alloc(digestSize(alg))])) };
}

/**
 * Parses and replays what the list holds beyond `previous` (or all of it without one).
 * Checks: the state is well formed and has exactly the requested banks (INVALID_ARGUMENT);
 * a tail starts at the recorded offset and entry count (IMA_MALFORMED); a whole list
 * still holds the recorded prefix: as long, a line boundary at the offset, the same number
 * of lines and the same last line, else it is replayed from the start (`restarted`). The
 * new entries are parsed with every parseImaList check. The returned PCR 10 values still
 * have to be compared with a quote (compareImaPcr10).
 */
export function appraiseImaIncrement(previous: ImaAppraisalState | undefined, input: ImaIncrementInput): ImaIncrement {
  const banks = checkedBanks(input.banks);
  const buf = typeof input.list === 'string' ? Buffer.from(input.list, 'utf8') : Buffer.from(input.list.buffer, input.list.byteOffset, input.list.byteLength);
  let state = previous === undefined ? initialImaState(banks) : checkedState(previous, banks);
  let restartReason: string | undefined;
  let start = 0;

  if (input.tailOffset !== undefined || input.tailFirstEntry !== undefined) {
    if (input.tailOffset !== state.byteOffset || input.tailFirstEntry !== state.entriesSeen) {
      throw new AttestdError(
        'IMA_MALFORMED',
        `IMA tail starts at byte ${String(input.tailOffset)}, entry ${String(input.tailFirstEntry)}; ` +
          `the state ends at byte ${state.byteOffset}, entry ${state.entriesSeen}`,
      );
    }
  } else if (state.entriesSeen > 0) {
    restartReason = prefixMismatch(buf, state);
    if (restartReason === undefined) start = state.byteOffset;
    else state = initialImaState(banks);
  }

  const room = (input.limits?.maxEntries ?? IMA_MAX_ENTRIES) - state.entriesSeen;
  if (room <= 0 && start < buf.length) {
    throw new AttestdError('IMA_MALFORMED', `IMA line ${state.entriesSeen + 1}: more than ${state.entriesSeen} entries`);
  }
  const parsed = parseImaLines(buf.subarray(start), { ...input.limits, maxEntries: Math.max(1, room), firstLine: state.entriesSeen + 1 });
  const replay = replayImaPcr10(parsed.entries, { banks, start: state.pcr10, sha1PaddedBanks: input.sha1PaddedBanks === true });

  const end = start + parsed.consumed;
  const next: ImaAppraisalState = {
    entriesSeen: state.entriesSeen + parsed.entries.length,
    byteOffset: (input.tailOffset ?? 0) + end,
    pcr10: replay.pcr10,
  };
  const lastLine = parsed.entries.length > 0 ? lineHash(buf, end) : state.lastLineHash;
  if (lastLine !== undefined) next.lastLineHash = lastLine;
  const out: ImaIncrement = { state: next, newEntries: parsed.entries, restarted: restartReason !== undefined, pendingBytes: parsed.pending };
  if (restartReason !== undefined) out.restartReason = restartReason;
  return out;
}

function checkedState(state: ImaAppraisalState, banks: HashAlg[]): ImaAppraisalState {
  const { entriesSeen, byteOffset, pcr10, lastLineHash } = state;
  if (!Number.isSafeInteger(entriesSeen) || entriesSeen < 0 || entriesSeen > IMA_MAX_ENTRIES) {
    throw new AttestdError('INVALID_ARGUMENT', 'IMA state: bad entry count');
  }
  if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || (byteOffset === 0) !== (entriesSeen === 0)) {
    throw new AttestdError('INVALID_ARGUMENT', 'IMA state: bad byte offset');
  }
  if (!(pcr10 instanceof Map) || pcr10.size !== banks.length) {
    throw new AttestdError('INVALID_ARGUMENT', `IMA state: PCR 10 banks differ from ${banks.join(', ')}`);
  }
  for (const alg of banks) {
    const v = pcr10.get(alg);
    if (!Buffer.isBuffer(v) || v.length !== digestSize(alg)) throw new AttestdError('INVALID_ARGUMENT', `IMA state: no ${alg} PCR 10`);
  }
  if (lastLineHash !== undefined && (!Buffer.isBuffer(lastLineHash) || lastLineHash.length !== 32)) {
    throw new AttestdError('INVALID_ARGUMENT', 'IMA state: bad last line hash');
  }
  return state;
}

/** Why buf does not extend the list the state describes, or undefined when it does. */
function prefixMismatch(buf: Buffer, state: ImaAppraisalState): string | undefined {
  if (buf.length < state.byteOffset) {
    return `IMA list is ${buf.length} bytes, shorter than the ${state.byteOffset} already replayed: the log was reset`;
  }
  if (buf[state.byteOffset - 1] !== NEWLINE) return `IMA list has no line boundary at byte ${state.byteOffset}: the log was replaced`;
  let lines = 0;
  for (let at = indexIn(buf, NEWLINE, 0, state.byteOffset); at !== -1; at = indexIn(buf, NEWLINE, at + 1, state.byteOffset)) {
    lines++;
  }
  if (lines !== state.entriesSeen) {
    return `IMA list has ${lines} lines before byte ${state.byteOffset}, the state ${state.entriesSeen}: the log was replaced`;
  }
  if (state.lastLineHash !== undefined && !lineHash(buf, state.byteOffset).equals(state.lastLineHash)) {
    return `IMA line ${state.entriesSeen} differs from the one replayed: the log was replaced`;
  }
  return undefined;
}

/** SHA-256 of the line that ends (newline included) just before `end`. */
function lineHash(buf: Buffer, end: number): Buffer {
  const from = lastIndexIn(buf, NEWLINE, 0, end - 1) + 1;
  return createHash('sha256').update(buf.subarray(from, end)).digest();
}
