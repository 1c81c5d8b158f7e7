/**
 * PCR replay of a parsed event log and its comparison with quoted PCR values.
 *
 * Replay starts every PCR at zero, except PCR 0 after a StartupLocality event, whose last
 * byte is the locality (PFP 10.4.5.3); each event other than EV_NO_ACTION extends its PCR
 * in every bank the log carries: new = H(old || digest). Banks whose algorithm this
 * verifier does not know, and banks that some extending event carries no digest for, are
 * skipped (the parser reports both as warnings).
 */
import { hash } from 'node:crypto';
import { AttestdError } from '../../base/errors.js';
import { digestSize, type HashAlg } from '../tpm-alg.js';
import type { PcrBank } from '../pcr.js';
import { EV } from './event-types.js';
import type { EventLog, EventRef, ReplayedBank } from './types.js';
import type { Reason } from '../../base/reason.js';

/** The PCRs a PC Client boot log accounts for: firmware (0-7), boot loader (8, 9), shim (14). */
export const DEFAULT_REPLAY_PCRS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14];

export function resetValue(alg: HashAlg, pcr: number, startupLocality: number): Buffer {
  const v = Buffer.alloc(digestSize(alg));
  if (pcr === 0) v[v.length - 1] = startupLocality;
  return v;
}

/** Replayed values, per bank, of the PCRs the log extends; each with the event that last did. */
export function replay(log: EventLog): ReplayedBank[] {
  const banks: ReplayedBank[] = [];
  for (const a of log.algorithms) {
    if (a.alg === undefined) continue;
    const alg = a.alg;
    const values = new Map<number, Buffer>();
    const lastEvent = new Map<number, EventRef>();
    // old || digest, hashed in one call: a Hash object per extend costs more than the hashing.
    const size = digestSize(alg);
    const scratch = Buffer.alloc(2 * size);
    let complete = true;
    for (const e of log.events) {
      if (e.type === EV.NO_ACTION) continue;
      const digest = e.digests.get(alg);
      if (digest === undefined) {
        complete = false;
        break;
      }
      const old = values.get(e.pcr) ?? resetValue(alg, e.pcr, log.startupLocality);
      if (digest.length === size) {
        old.copy(scratch, 0);
        digest.copy(scratch, size);
        values.set(e.pcr, hash(alg, scratch, 'buffer'));
      } else {
        values.set(e.pcr, hash(alg, Buffer.concat([old, digest]), 'buffer'));
      }
      lastEvent.set(e.pcr, { index: e.index, typeName: e.typeName });
    }
    if (complete) banks.push({ alg, values, lastEvent, startupLocality: log.startupLocality });
  }
  return banks;
}

export interface CompareOptions {
  /**
   * A checked PCR that is quoted but that the log never extends: 'reset' (default) requires
   * the quoted value to be the PCR's reset value, so a log cannot pass by leaving a PCR's
   * events out; 'skip' leaves it unchecked.
   */
  untouched?: 'reset' | 'skip';
}

/**
 * Every reason the replayed banks disagree with the quoted ones, for appraisal. Checks,
 * for each quoted bank the log also carries and each PCR in `pcrs` that is quoted: the
 * replayed value equals the quoted one; for a PCR the log does not extend, the quoted
 * value is the reset value (unless `untouched: 'skip'`). A quote sharing no bank with the
 * log is itself a mismatch. Empty when everything agrees.
 */
export function checkAgainstQuoted(
  replayed: PcrBank[],
  quoted: PcrBank[],
  pcrs: readonly number[] = DEFAULT_REPLAY_PCRS,
  opts: CompareOptions = {},
): Reason[] {
  const reasons: Reason[] = [];
  const mismatch = (message: string): void => {
    reasons.push({ code: 'EVENTLOG_REPLAY_MISMATCH', message });
  };
  let common = 0;
  for (const q of quoted) {
    const bank = replayed.find((b) => b.alg === q.alg);
    if (bank === undefined) continue;
    common++;
    const detail = bank as Partial<ReplayedBank>;
    for (const pcr of pcrs) {
      const quotedValue = q.values.get(pcr);
      if (quotedValue === undefined) continue;
      const value = bank.values.get(pcr);
      if (value !== undefined) {
        if (!value.equals(quotedValue)) {
          const last = detail.lastEvent?.get(pcr);
          const by = last ? `; last extended by event ${last.index} (${last.typeName})` : '';
          mismatch(`${q.alg} PCR ${pcr}: the event log replays to ${value.toString('hex')}, the quote has ${quotedValue.toString('hex')}${by}`);
        }
        continue;
      }
      if (opts.untouched === 'skip' || pcr > 15) continue;
      const reset = resetValue(q.alg, pcr, detail.startupLocality ?? 0);
      if (!reset.equals(quotedValue)) {
        mismatch(`${q.alg} PCR ${pcr}: the quote has ${quotedValue.toString('hex')} but the event log has no event for it`);
      }
    }
  }
  if (common === 0) {
    mismatch(`the quote (${quoted.map((b) => b.alg).join(', ') || 'no banks'}) and the event log (${replayed.map((b) => b.alg).join(', ') || 'no banks'}) share no PCR bank`);
  }
  return reasons;
}

/** As checkAgainstQuoted, but throws AttestdError('EVENTLOG_REPLAY_MISMATCH') naming every mismatch. */
export function compareWithQuoted(
  replayed: PcrBank[],
  quoted: PcrBank[],
  pcrs: readonly number[] = DEFAULT_REPLAY_PCRS,
  opts: CompareOptions = {},
): void {
  const reasons = checkAgainstQuoted(replayed, quoted, pcrs, opts);
  if (reasons.length > 0) {
    throw new AttestdError('EVENTLOG_REPLAY_MISMATCH', reasons.map((r) => r.message).join('; '));
  }
}
