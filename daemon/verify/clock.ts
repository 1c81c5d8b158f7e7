/**
 * Boot continuity from two TPMS_CLOCK_INFO readings (TPM 2.0 Part 2, 10.11.1), each taken
 * from a verified quote. Pure.
 *
 * resetCount goes up on every TPM Reset (a reboot: Startup(CLEAR) without an orderly
 * Shutdown(STATE)); restartCount goes up on a TPM Restart or Resume (Shutdown(STATE) then
 * Startup: hibernation and, on many platforms, suspend to RAM) and returns to zero on a
 * Reset. Within one boot both stay put and clock, in milliseconds, only moves forward. A
 * changed count means the PCRs were reset or restored since the previous quote, so what was
 * appraised then says nothing about now. `safe` is false when the TPM may already have
 * reported a higher clock than it now holds: after an unorderly shutdown it restarts from the
 * last value it saved to NV. That only ever happens at a Startup, which moves resetCount or
 * restartCount, and the flag returns to true once the clock is saved again; so within one
 * boot `safe` can go from false to true but never from true to false. A reading that does so
 * comes from a TPM whose clock was rolled back (or a state restored) without its counts
 * moving: the same boot cannot be vouched for, and the pair is refused (TPM_CLOCK_UNSAFE).
 *
 * Quotes signed by a key outside the endorsement and platform hierarchies carry obfuscated
 * counts (Part 1, 36.7): still constant within a boot, so a change still shows, but their
 * values mean nothing. attestd's AK is an endorsement-hierarchy key.
 */
import type { ClockInfo } from './tpm-attest.js';

export type ClockChangeCode = 'TPM_RESET' | 'TPM_RESTART' | 'TPM_CLOCK_WENT_BACKWARDS' | 'TPM_CLOCK_UNSAFE';

export interface ClockComparison {
  /**
   * True only when `prev` exists and `next` comes from the same boot with the clock not
   * moved back. False with no `reason` when there is no previous reading to compare with.
   */
  sameBoot: boolean;
  reason?: { code: ClockChangeCode; message: string };
  /** next.safe, recorded as the TPM reported it. */
  safe: boolean;
  /** Milliseconds of TPM clock between the readings, when sameBoot. */
  elapsedMs?: bigint;
}

/**
 * Compares two clock readings, `prev` from an earlier quote of the same TPM and AK. In order:
 * resetCount differs (TPM_RESET; lower means TPM2_Clear or another TPM), restartCount
 * differs (TPM_RESTART), clock is lower than before (TPM_CLOCK_WENT_BACKWARDS), `safe` turned
 * from true to false (TPM_CLOCK_UNSAFE). Equal clocks are the same boot: two quotes may fall
 * in the same millisecond. The last two are failures of the TPM's clock, not a new boot.
 */
export function compareClock(prev: ClockInfo | undefined, next: ClockInfo): ClockComparison {
  const safe = next.safe;
  if (prev === undefined) return { sameBoot: false, safe };
  if (next.resetCount !== prev.resetCount) {
    const lower = next.resetCount < prev.resetCount ? ' (lower: the TPM was cleared, or this is another TPM)' : '';
    return {
      sameBoot: false,
      safe,
      reason: {
        code: 'TPM_RESET',
        message: `TPM resetCount changed from ${prev.resetCount} to ${next.resetCount}${lower}: the TPM was reset (reboot) since the previous quote`,
      },
    };
  }
  if (next.restartCount !== prev.restartCount) {
    return {
      sameBoot: false,
      safe,
      reason: {
        code: 'TPM_RESTART',
        message: `TPM restartCount changed from ${prev.restartCount} to ${next.restartCount} (resetCount ${next.resetCount}): the TPM was restarted or resumed since the previous quote`,
      },
    };
  }
  if (next.clock < prev.clock) {
    return {
      sameBoot: false,
      safe,
      reason: {
        code: 'TPM_CLOCK_WENT_BACKWARDS',
        message: `TPM clock went back from ${prev.clock} ms to ${next.clock} ms within one boot (resetCount ${next.resetCount}, restartCount ${next.restartCount})`,
      },
    };
  }
  if (prev.safe && !safe) {
    return {
      sameBoot: false,
      safe,
      reason: {
        code: 'TPM_CLOCK_UNSAFE',
        message: `TPM clockInfo.safe turned from yes to no within one boot (resetCount ${next.resetCount}, restartCount ${next.restartCount}, clock ${prev.clock} -> ${next.clock} ms): the clock was rolled back or the TPM state restored`,
      },
    };
  }
  return { sameBoot: true, safe, elapsedMs: next.clock - prev.clock };
}
