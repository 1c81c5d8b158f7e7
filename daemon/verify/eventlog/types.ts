/**
 * The shape of a parsed TCG PC Client event log (TCG PC Client Platform Firmware Profile,
 * section 10) and the limits that bound parsing. Everything here is what the log claims:
 * only a replay that matches quoted PCR values makes any of it evidence.
 */
import type { HashAlg } from '../tpm-alg.js';
import type { PcrBank } from '../pcr.js';

/** 'crypto-agile': TCG_PCR_EVENT2 after a Spec ID Event03; 'sha1': TCG_PCR_EVENT only (TPM 1.2 style). */
export type EventLogFormat = 'crypto-agile' | 'sha1';

/** A digest algorithm the log declares. `alg` is undefined for an id this verifier does not know. */
export interface LogAlgorithm {
  id: number;
  alg: HashAlg | undefined;
  digestSize: number;
}

/** TCG_EfiSpecIDEvent (PFP 10.4.5.1), carried by the first event of a crypto-agile log. */
export interface SpecIdEvent {
  signature: string;
  platformClass: number;
  specVersionMajor: number;
  specVersionMinor: number;
  specErrata: number;
  /** 1: UINTN is 32 bits, 2: UINTN is 64 bits. */
  uintnSize: number;
  algorithms: LogAlgorithm[];
  vendorInfo: string;
}

/** Structured, JSON-friendly decoding of an event's data; `kind` says which shape it has. */
export interface EventDetails {
  kind: string;
  [field: string]: unknown;
}

export interface TcgEvent {
  /** Position in the log, from 0 (the first, SHA-1-format event). */
  index: number;
  /** Byte offset of the event's first byte in the log. */
  offset: number;
  pcr: number;
  type: number;
  typeName: string;
  /** Digest per bank; an algorithm this verifier does not know is keyed by its id, e.g. "0x0012". */
  digests: Map<HashAlg | string, Buffer>;
  data: Buffer;
  /** Decoded `data`; computed when first read. Unbound to the digest unless digestsMatchData says so. */
  details?: EventDetails;
}

export interface EventLogWarning {
  event: number;
  message: string;
}

export interface EventLog {
  format: EventLogFormat;
  specId?: SpecIdEvent;
  /** The banks the log carries: the Spec ID's list, or SHA-1 alone for a 'sha1' log. */
  algorithms: LogAlgorithm[];
  /** Locality from a StartupLocality EV_NO_ACTION event, else 0. */
  startupLocality: number;
  events: TcgEvent[];
  warnings: EventLogWarning[];
}

export interface EventLogLimits {
  maxBytes: number;
  maxEvents: number;
  maxEventDataSize: number;
  /** Upper bound on algorithms in the Spec ID event, and so on digests per event. */
  maxAlgorithms: number;
}

export const DEFAULT_LIMITS: Readonly<EventLogLimits> = {
  maxBytes: 16 * 1024 * 1024,
  maxEvents: 200_000,
  maxEventDataSize: 1024 * 1024,
  maxAlgorithms: 16,
};

export interface ParseOptions {
  limits?: Partial<EventLogLimits>;
  /** Give events `details`, decoded on first read (default true); replay does not need them. */
  details?: boolean;
}

/** The event that last extended a PCR, for naming it in a mismatch. */
export interface EventRef {
  index: number;
  typeName: string;
}

/** A replayed bank: a PcrBank plus what explains each value. */
export interface ReplayedBank extends PcrBank {
  /** PCR index -> the last event that extended it. */
  lastEvent: Map<number, EventRef>;
  /** PCR 0's starting locality (its reset value ends in this byte). */
  startupLocality: number;
}

