/**
 * One boot event log being appraised against a verified quote (appraise-boot.ts): which of
 * its events are evidence, their decoded data, and the reasons found so far. The log is what
 * the platform claims; an event counts only in a PCR the quote covers in a bank the log
 * replays, and its data only where its digests commit to it.
 */
import type { Reason } from '../base/reason.js';
import { digestsMatchData } from '../verify/eventlog/binding.js';
import type { DecodeContext } from '../verify/eventlog/events.js';
import { decodeDetails } from '../verify/eventlog/events.js';
import type { EventDetails, EventLog, TcgEvent } from '../verify/eventlog/types.js';

export function eventName(e: TcgEvent): string {
  return `PCR ${e.pcr} event ${e.index} (${e.typeName})`;
}

/** Log text is attacker-written: shown bounded and without control characters. */
export function shown(text: string, max = 160): string {
  let out = '';
  for (const ch of text) {
    if (out.length >= max) return `${out}...`;
    const c = ch.codePointAt(0) ?? 0;
    out += c < 0x20 || c === 0x7f ? ' ' : ch;
  }
  return out;
}

/** The state of one appraisal, shared by its checks; see the file comment. */
export class BootAppraisal {
  /** PCRs a check needed that the quote did not cover. */
  private readonly unquoted = new Set<number>();
  private readonly found: Reason[] = [];
  private readonly decode: DecodeContext;

  /** `verified`: the boot PCRs the quote covers in a bank the log replays. */
  constructor(readonly log: EventLog, readonly verified: ReadonlySet<number>) {
    this.decode = { uintn: log.specId?.uintnSize === 1 ? 4 : 8 };
  }

  /** The event's data as its type defines it, decoded now if the parser left it undecoded. */
  details(e: TcgEvent): EventDetails {
    return e.details ?? decodeDetails(e.type, e.data, this.decode);
  }

  /** Whether `pcr` is verified; if not, it is reported as not quoted. */
  needs(pcr: number): boolean {
    if (this.verified.has(pcr)) return true;
    this.unquoted.add(pcr);
    return false;
  }

  /** Whether the event is evidence, by its PCR (see needs). */
  vouched(e: TcgEvent): boolean {
    return this.needs(e.pcr);
  }

  /** Whether the event's data does not hash to its digests; if so, says so (BOOT_EVENT_UNBOUND). */
  unbound(e: TcgEvent, what: string): boolean {
    if (digestsMatchData(e)) return false;
    this.add('BOOT_EVENT_UNBOUND', `${eventName(e)} ${what}: the event data does not hash to its digests, so it cannot be trusted`);
    return true;
  }

  add(code: string, message: string): void {
    this.found.push({ code, message });
  }

  /** BOOT_PCR_NOT_QUOTED for each PCR needed but not quoted, by number, then the reasons in the order found. */
  reasons(): Reason[] {
    const reasons: Reason[] = [];
    for (const pcr of [...this.unquoted].sort((a, b) => a - b)) {
      reasons.push({ code: 'BOOT_PCR_NOT_QUOTED', message: `PCR ${pcr} was not quoted in a bank the event log replays, so its events are not evidence` });
    }
    reasons.push(...this.found);
    return reasons;
  }
}
