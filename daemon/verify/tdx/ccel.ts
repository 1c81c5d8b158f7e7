/**
 * The confidential-computing event log (ACPI CCEL, TCG PC Client crypto-agile format) and
 * its replay to RTMR0..3. The log's "PCR index" is the CC measurement register index:
 * 0 = MRTD (built by the TDX module, never extended by the log), 1..4 = RTMR0..3.
 *
 * The log region is attacker-controlled and usually padded to a fixed size: it is read with
 * the bounded little-endian reader, event and digest counts are capped, and the log ends at
 * the first header of all-ones or all-zeros (unused space). Failures are CCEL_MALFORMED.
 */
import { createHash } from 'node:crypto';
import { AttestdError } from '../../base/errors.js';
import { ByteReader } from '../bytes/reader.js';

export const MAX_CCEL_SIZE = 16 * 1024 * 1024;
export const MAX_CCEL_EVENTS = 65536;
const MAX_EVENT_DATA = 1024 * 1024;
const EV_NO_ACTION = 0x3;
const SPEC_ID_SIGNATURE = Buffer.from('Spec ID Event03\0', 'latin1');

/** TCG algorithm ids the replay can use, with their node:crypto names and sizes. */
const REPLAY_ALGS: Record<number, { name: string; size: number }> = {
  0x0c: { name: 'sha384', size: 48 },
  0x12: { name: 'sm3', size: 32 },
};

export interface CcelEvent {
  /** 0-based position among the events after the Spec ID header. */
  seq: number;
  /** Byte offset of the event in the log. */
  offset: number;
  mrIndex: number;
  eventType: number;
  digests: Map<number, Buffer>;
  data: Buffer;
}

export interface CcelLog {
  /** Algorithm id -> digest size, from the Spec ID event. */
  algorithms: Map<number, number>;
  events: CcelEvent[];
}

export interface RtmrReplay {
  /** 'sha384' for TDX; 'sm3' for logs that only carry SM3 (Hygon CSV). */
  alg: string;
  rtmrs: [Buffer, Buffer, Buffer, Buffer];
  /** For each RTMR, the last event that extended it (undefined when none did). */
  lastEvent: [CcelEvent | undefined, CcelEvent | undefined, CcelEvent | undefined, CcelEvent | undefined];
}

export function parseCcel(bytes: Uint8Array): CcelLog {
  if (!(bytes instanceof Uint8Array)) throw new AttestdError('CCEL_MALFORMED', 'event log must be bytes');
  if (bytes.byteLength > MAX_CCEL_SIZE) throw new AttestdError('CCEL_MALFORMED', `event log is ${bytes.byteLength} bytes`);
  // The region is mostly padding (often 1 MiB or more), so it is not copied whole: the digests
  // and event data are copied out, so that none aliases the caller's buffer.
  // Annotated so that r.fail() narrows as a never-returning call.
  const r: ByteReader = new ByteReader(bytes, 'le', 'CCEL_MALFORMED');
  const algorithms = parseSpecIdEvent(r);
  const events: CcelEvent[] = [];
  while (r.remaining >= 8) {
    const offset = r.offset;
    const mrIndex = r.u32('MR index');
    const eventType = r.u32('event type');
    if ((mrIndex === 0xffffffff && eventType === 0xffffffff) || (mrIndex === 0 && eventType === 0)) break;
    if (events.length >= MAX_CCEL_EVENTS) r.fail(`more than ${MAX_CCEL_EVENTS} events`);
    if (mrIndex > 4) r.fail(`event ${events.length} at ${offset}: MR index ${mrIndex} is not 0..4`);
    const count = r.u32('digest count');
    if (count === 0 || count > algorithms.size) r.fail(`event ${events.length} at ${offset}: ${count} digests`);
    const digests = new Map<number, Buffer>();
    for (let i = 0; i < count; i++) {
      const alg = r.u16('digest algorithm');
      const size = algorithms.get(alg);
      if (size === undefined) r.fail(`event ${events.length} at ${offset}: algorithm 0x${alg.toString(16)} is not in the Spec ID event`);
      if (digests.has(alg)) r.fail(`event ${events.length} at ${offset}: algorithm 0x${alg.toString(16)} twice`);
      digests.set(alg, Buffer.from(r.bytes(size, 'digest')));
    }
    const dataSize = r.u32('event size');
    if (dataSize > MAX_EVENT_DATA) r.fail(`event ${events.length} at ${offset}: ${dataSize} bytes of event data`);
    events.push({ seq: events.length, offset, mrIndex, eventType, digests, data: Buffer.from(r.bytes(dataSize, 'event data')) });
  }
  return { algorithms, events };
}

/** The first event: a SHA-1-format TCG_PCR_EVENT carrying TCG_EfiSpecIdEvent. */
function parseSpecIdEvent(r: ByteReader): Map<number, number> {
  r.u32('Spec ID MR index');
  if (r.u32('Spec ID event type') !== EV_NO_ACTION) r.fail('the first event is not EV_NO_ACTION');
  r.skip(20, 'Spec ID digest');
  const size = r.u32('Spec ID event size');
  const ev = r.sub(size, 'Spec ID event');
  if (!ev.bytes(16, 'Spec ID signature').equals(SPEC_ID_SIGNATURE)) r.fail('the first event is not a Spec ID Event03');
  ev.skip(4 + 1 + 1 + 1 + 1, 'Spec ID platform class and version');
  const n = ev.u32('Spec ID algorithm count');
  if (n === 0 || n > 16) r.fail(`Spec ID event lists ${n} algorithms`);
  const algorithms = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const alg = ev.u16('algorithm id');
    const size = ev.u16('digest size');
    if (size === 0 || size > 64) r.fail(`algorithm 0x${alg.toString(16)} has digest size ${size}`);
    const known = REPLAY_ALGS[alg];
    if (known && known.size !== size) r.fail(`algorithm 0x${alg.toString(16)} declared with size ${size}`);
    algorithms.set(alg, size);
  }
  ev.skip(ev.u8('vendor info size'), 'vendor info');
  ev.end('Spec ID event');
  return algorithms;
}

/**
 * Replays the log: RTMR[i] = H(RTMR[i] || digest) for every event with MR index i+1, except
 * EV_NO_ACTION events. SHA-384 is used when the log carries it, else SM3-256.
 */
export function replayRtmrs(log: CcelLog): RtmrReplay {
  const algId = log.algorithms.has(0x0c) ? 0x0c : log.algorithms.has(0x12) ? 0x12 : -1;
  const alg = REPLAY_ALGS[algId];
  if (!alg) throw new AttestdError('CCEL_MALFORMED', 'the log carries neither SHA-384 nor SM3-256 digests');
  const rtmrs: RtmrReplay['rtmrs'] = [0, 1, 2, 3].map(() => Buffer.alloc(alg.size)) as RtmrReplay['rtmrs'];
  const lastEvent: RtmrReplay['lastEvent'] = [undefined, undefined, undefined, undefined];
  for (const e of log.events) {
    if (e.mrIndex === 0 || e.eventType === EV_NO_ACTION) continue;
    const digest = e.digests.get(algId);
    if (!digest) throw new AttestdError('CCEL_MALFORMED', `event ${e.seq} has no ${alg.name} digest`);
    const i = e.mrIndex - 1;
    rtmrs[i] = createHash(alg.name).update(rtmrs[i]!).update(digest).digest();
    lastEvent[i] = e;
  }
  return { alg: alg.name, rtmrs, lastEvent };
}

/**
 * Compares a replay with the quote's RTMRs; CCEL_REPLAY_MISMATCH names the first register
 * that differs and the last event that extended it.
 */
export function checkReplayMatches(replay: RtmrReplay, quoted: readonly Buffer[]): void {
  for (let i = 0; i < 4; i++) {
    if (!replay.rtmrs[i]!.equals(quoted[i] ?? Buffer.alloc(0))) {
      const e = replay.lastEvent[i];
      const where = e ? `last extended by event ${e.seq} (type 0x${e.eventType.toString(16)}, offset ${e.offset})` : 'no event extends it';
      throw new AttestdError('CCEL_REPLAY_MISMATCH', `RTMR${i} replays to ${replay.rtmrs[i]!.toString('hex')} but the quote has ${quoted[i]?.toString('hex')}; ${where}`);
    }
  }
}
