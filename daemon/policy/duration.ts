/**
 * Durations in a policy are written as an integer and a unit: `500ms`, `2s`, `5m`, `1h`,
 * and, for the long spans of collateral freshness, `30d`.
 * No fractions, no compound forms (`1h30m`), no bare numbers: a bare `30` is ambiguous
 * between seconds and milliseconds, and that ambiguity is how leases end up living 1000
 * times longer than meant.
 */

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
const DAY_MS = 86_400_000;
type Unit = keyof typeof UNIT_MS;

/** At most nine digits keeps every value exact in a double, whatever the unit. */
const MAX_DIGITS = 9;

export interface DurationBounds {
  minMs: number;
  maxMs: number;
}

export const INTERVAL_BOUNDS: DurationBounds = { minMs: 500, maxMs: 3_600_000 };
export const MAX_AGE_BOUNDS: DurationBounds = { minMs: 500, maxMs: 86_400_000 };
export const TTL_BOUNDS: DurationBounds = { minMs: 1_000, maxMs: 86_400_000 };
/** Collateral (certificates, CRLs, TCB info) is refreshed daily to monthly; a year is the outside. */
export const COLLATERAL_AGE_BOUNDS: DurationBounds = { minMs: 3_600_000, maxMs: 366 * 86_400_000 };

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/** Milliseconds for a duration string, or undefined when it is not in the accepted form. */
export function parseDuration(text: string): number | undefined {
  let digits = 0;
  while (digits < text.length && isDigit(text.charCodeAt(digits))) digits += 1;
  if (digits === 0 || digits > MAX_DIGITS) return undefined;
  const unit = text.slice(digits);
  if (!Object.prototype.hasOwnProperty.call(UNIT_MS, unit)) return undefined;
  return Number(text.slice(0, digits)) * UNIT_MS[unit as Unit];
}

/**
 * As parseDuration, also accepting days (`30d`). Only fields that measure spans of days
 * (collateral age) take it; a lease or interval in days is a mistake worth refusing.
 */
export function parseLongDuration(text: string): number | undefined {
  if (text.endsWith('d')) {
    const digits = text.slice(0, -1);
    // Five digits of days stay exact in a double once turned into milliseconds.
    if (digits.length === 0 || digits.length > 5) return undefined;
    for (let i = 0; i < digits.length; i += 1) if (!isDigit(digits.charCodeAt(i))) return undefined;
    return Number(digits) * DAY_MS;
  }
  return parseDuration(text);
}

/** As formatDuration, in days when exact: for the fields parseLongDuration reads. */
export function formatLongDuration(ms: number): string {
  if (Number.isSafeInteger(ms) && ms > 0 && ms % DAY_MS === 0) return `${ms / DAY_MS}d`;
  return formatDuration(ms);
}

/** The shortest exact rendering of a millisecond count, in the policy's own notation. */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) return `${ms}ms`;
  if (ms !== 0 && ms % UNIT_MS.h === 0) return `${ms / UNIT_MS.h}h`;
  if (ms !== 0 && ms % UNIT_MS.m === 0) return `${ms / UNIT_MS.m}m`;
  if (ms !== 0 && ms % UNIT_MS.s === 0) return `${ms / UNIT_MS.s}s`;
  return `${ms}ms`;
}

/** A sentence fragment saying what was expected, or undefined when `ms` is within bounds. */
export function checkBounds(ms: number, bounds: DurationBounds, opts: { days?: boolean } = {}): string | undefined {
  if (ms >= bounds.minMs && ms <= bounds.maxMs) return undefined;
  const f = opts.days === true ? formatLongDuration : formatDuration;
  return `expected a duration from ${f(bounds.minMs)} to ${f(bounds.maxMs)}, found ${f(ms)}`;
}
