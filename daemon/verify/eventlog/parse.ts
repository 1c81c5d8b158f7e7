/**
 * TCG PC Client event log parser (PC Client Platform Firmware Profile, section 10): the
 * crypto-agile format (a SHA-1-format Spec ID event, then TCG_PCR_EVENT2 records carrying
 * digests of the declared algorithms) and the SHA-1-only format of TPM 1.2 logs
 * (TCG_PCR_EVENT records throughout). An event may omit a declared algorithm (tpm2-tools
 * writes such logs); that bank is then reported and left out of replay.
 *
 * The whole log is attacker-controlled. The input size, the number of events, each
 * event's data size and each event's digest count are bounded before anything is read or
 * allocated, and every structural error names the event number and byte offset. Event
 * data is decoded into `details` (on first read) but never trusted: decoding failures do
 * not fail parsing.
 */
import { AttestdError } from '../../base/errors.js';
import { ByteReader } from '../bytes/reader.js';
import { hex16 } from '../tpm-alg.js';
import { EV, eventTypeName } from './event-types.js';
import { decodeDetails, type DecodeContext } from './events.js';
import { SPEC_ID_03, algKey, parseSpecId, startsWithAscii, startupLocalityOf } from './spec-id.js';
import { separatorWarnings } from './warnings.js';
import {
  DEFAULT_LIMITS,
  type EventDetails,
  type EventLog,
  type EventLogLimits,
  type EventLogWarning,
  type LogAlgorithm,
  type ParseOptions,
  type SpecIdEvent,
  type TcgEvent,
} from './types.js';

const SHA1_ONLY: LogAlgorithm[] = [{ id: 0x0004, alg: 'sha1', digestSize: 20 }];

/** Highest PCR index a PC Client TPM has; an extend of any other index cannot have happened. */
const MAX_PCR = 23;

export function parseEventLog(bytes: Uint8Array, opts: ParseOptions = {}): EventLog {
  if (!(bytes instanceof Uint8Array)) throw new AttestdError('INVALID_ARGUMENT', 'an event log must be a Uint8Array');
  const limits: EventLogLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  if (bytes.length > limits.maxBytes) {
    throw new AttestdError('EVENTLOG_MALFORMED', `event log is ${bytes.length} bytes, more than the ${limits.maxBytes} allowed`);
  }
  if (bytes.length === 0) throw new AttestdError('EVENTLOG_MALFORMED', 'event log is empty');
  // One copy, so the events' data views never alias a buffer the caller may reuse.
  const buf = Buffer.from(bytes);
  const pos: EventPosition = { index: -1, offset: 0 };
  const r = new ByteReader(buf, 'le', 'EVENTLOG_MALFORMED', () => (pos.index >= 0 ? where(pos.index, pos.offset) : ''));

  const first = readSha1Event(r, pos, 0, limits);
  let specId: SpecIdEvent | undefined;
  if (first.type === EV.NO_ACTION && startsWithAscii(first.data, SPEC_ID_03)) {
    if (first.pcr !== 0) throw at(first, `Spec ID event is in PCR ${first.pcr}, not PCR 0`);
    if (first.digests.get('sha1')?.some((b) => b !== 0)) throw at(first, 'Spec ID event digest is not zero');
    specId = parseSpecId(first.data, first.offset, limits);
  }
  const algorithms = specId?.algorithms ?? SHA1_ONLY;
  const banks = algorithms.map(framing);
  const events: TcgEvent[] = [first];
  while (r.remaining > 0) {
    if (events.length >= limits.maxEvents) {
      throw malformedAt(events.length, r.offset, `more than ${limits.maxEvents} events`);
    }
    events.push(specId ? readAgileEvent(r, pos, events.length, banks, limits) : readSha1Event(r, pos, events.length, limits));
  }

  const warnings: EventLogWarning[] = [];
  const startupLocality = findStartupLocality(events, warnings, specId !== undefined);
  for (const e of events) {
    if (e.type === EV.SEPARATOR && e.data.length === 4 && e.data.readUInt32LE(0) === 1) {
      warnings.push({ event: e.index, message: `error separator (0x00000001) in PCR ${e.pcr}` });
    }
  }
  if (opts.details !== false) {
    const ctx = { uintn: specId?.uintnSize === 1 ? (4 as const) : (8 as const) };
    for (const e of events) {
      if (e.index === 0 && specId) e.details = { kind: 'spec-id', ...specId };
      else lazyDetails(e, ctx);
    }
  }
  for (const a of algorithms) {
    if (a.alg === undefined) {
      warnings.push({ event: 0, message: `algorithm 0x${hex16(a.id)} (${a.digestSize}-byte digests) is not supported and is not replayed` });
    }
  }
  warnings.push(...missingDigestWarnings(events, algorithms));
  warnings.push(...separatorWarnings(events));
  return { format: specId ? 'crypto-agile' : 'sha1', ...(specId ? { specId } : {}), algorithms, startupLocality, events, warnings };
}

/**
 * Decoding (X.509 parsing above all) costs far more than replay and is rarely needed for
 * every event, so `details` is computed on first read and then kept.
 */
function lazyDetails(e: TcgEvent, ctx: DecodeContext): void {
  Object.defineProperty(e, 'details', {
    enumerable: true,
    configurable: true,
    get(): EventDetails {
      const details = decodeDetails(e.type, e.data, ctx);
      Object.defineProperty(e, 'details', { value: details, enumerable: true, configurable: true, writable: true });
      return details;
    },
  });
}

/** The event being read, for the reader's failure messages; index -1 before the first. */
interface EventPosition {
  index: number;
  offset: number;
}

function where(index: number, offset: number): string {
  return `event ${index} at offset 0x${offset.toString(16)}: `;
}

/** The error every structural failure of a log raises, naming where it happened. */
function malformedAt(index: number, offset: number, message: string): AttestdError {
  return new AttestdError('EVENTLOG_MALFORMED', where(index, offset) + message);
}

function at(e: { index: number; offset: number }, message: string): AttestdError {
  return malformedAt(e.index, e.offset, message);
}

function begin(r: ByteReader, pos: EventPosition, index: number): { offset: number; pcr: number; type: number } {
  const offset = r.offset;
  pos.index = index;
  pos.offset = offset;
  const pcr = r.u32('pcrIndex');
  const type = r.u32('eventType');
  return { offset, pcr, type };
}

function finish(r: ByteReader, head: { offset: number; pcr: number; type: number }, index: number,
  digests: Map<string, Buffer>, limits: EventLogLimits): TcgEvent {
  const size = r.u32('eventSize');
  if (size > r.remaining) r.fail(`event size ${size} exceeds remaining ${r.remaining} bytes`);
  if (size > limits.maxEventDataSize) r.fail(`event size ${size} exceeds the limit of ${limits.maxEventDataSize} bytes`);
  const data = r.bytes(size, 'event data');
  if (head.type !== EV.NO_ACTION && head.pcr > MAX_PCR) r.fail(`PCR index ${head.pcr} is not a PCR`);
  return { index, offset: head.offset, pcr: head.pcr, type: head.type, typeName: eventTypeName(head.type), digests, data };
}

/** TCG_PCR_EVENT: pcrIndex, eventType, a 20-byte SHA-1 digest, eventDataSize, event. */
function readSha1Event(r: ByteReader, pos: EventPosition, index: number, limits: EventLogLimits): TcgEvent {
  const head = begin(r, pos, index);
  const digests = new Map<string, Buffer>([['sha1', r.bytes(20, 'SHA-1 digest')]]);
  return finish(r, head, index, digests, limits);
}

/** How one declared algorithm's digests are framed and stored, worked out once per log. */
interface Bank {
  id: number;
  key: string;
  size: number;
  /** The digest's name in failure messages. */
  what: string;
}

function framing(a: LogAlgorithm): Bank {
  return { id: a.id, key: algKey(a), size: a.digestSize, what: `0x${hex16(a.id)} digest` };
}

function bankOf(banks: readonly Bank[], id: number): Bank | undefined {
  for (const b of banks) if (b.id === id) return b;
  return undefined;
}

/** TCG_PCR_EVENT2: a TPML_DIGEST_VALUES of the Spec ID's algorithms, each at most once. */
function readAgileEvent(r: ByteReader, pos: EventPosition, index: number, banks: readonly Bank[], limits: EventLogLimits): TcgEvent {
  const head = begin(r, pos, index);
  const count = r.u32('digest count');
  // Fewer digests than declared occur in real tools' output; those banks are then not replayed.
  if (count === 0 || count > banks.length) {
    r.fail(`digest count ${count}, the Spec ID event declares ${banks.length}`);
  }
  const digests = new Map<string, Buffer>();
  for (let i = 0; i < count; i++) {
    const id = r.u16('hashAlg');
    const bank = bankOf(banks, id);
    if (bank === undefined) r.fail(`digest algorithm 0x${hex16(id)} is not declared in the Spec ID event`);
    if (digests.has(bank.key)) r.fail(`digest algorithm 0x${hex16(id)} appears twice`);
    digests.set(bank.key, r.bytes(bank.size, bank.what));
  }
  return finish(r, head, index, digests, limits);
}

/**
 * PFP 10.4.5.3: a StartupLocality event in PCR 0 sets PCR 0's starting value. Only one
 * may appear, and only before anything is extended into PCR 0. It belongs to TPM 2.0's
 * crypto-agile log; a SHA-1-format log is replayed as TPM 1.2 resets PCR 0, to zero.
 */
function findStartupLocality(events: TcgEvent[], warnings: EventLogWarning[], agile: boolean): number {
  let locality: number | undefined;
  let pcr0Extended = false;
  for (const e of events) {
    if (e.type !== EV.NO_ACTION) {
      if (e.pcr === 0) pcr0Extended = true;
      continue;
    }
    const l = startupLocalityOf(e.data);
    if (l === undefined) continue;
    if (e.pcr !== 0) throw at(e, `StartupLocality event is in PCR ${e.pcr}, not PCR 0`);
    if (locality !== undefined) throw at(e, 'a second StartupLocality event');
    if (pcr0Extended) throw at(e, 'StartupLocality event after PCR 0 was extended');
    if (l !== 0 && l !== 3 && l !== 4) warnings.push({ event: e.index, message: `unusual startup locality ${l}` });
    locality = l;
    if (!agile) warnings.push({ event: e.index, message: `StartupLocality ${l} in a SHA-1-format log is not applied` });
  }
  return agile ? locality ?? 0 : 0;
}

/** A bank some extending event has no digest for cannot be replayed; say so once per bank. */
function missingDigestWarnings(events: TcgEvent[], algorithms: LogAlgorithm[]): EventLogWarning[] {
  const out: EventLogWarning[] = [];
  for (const a of algorithms) {
    const key = algKey(a);
    const missing = events.filter((e) => e.type !== EV.NO_ACTION && !e.digests.has(key));
    const first = missing[0];
    if (first !== undefined) {
      out.push({ event: first.index, message: `${missing.length} event(s) carry no ${key} digest, so the ${key} bank is not replayed` });
    }
  }
  return out;
}
