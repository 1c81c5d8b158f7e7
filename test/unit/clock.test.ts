import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareClock } from '../../daemon/verify/clock.js';
import type { ClockInfo } from '../../daemon/verify/tpm-attest.js';

const base: ClockInfo = { clock: 1_000_000n, resetCount: 7, restartCount: 2, safe: true };
const at = (patch: Partial<ClockInfo>): ClockInfo => ({ ...base, ...patch });

describe('compareClock', () => {
  const table: [string, ClockInfo | undefined, ClockInfo, boolean, string | undefined][] = [
    ['no previous reading', undefined, base, false, undefined],
    ['same reading', base, base, true, undefined],
    ['clock moved on', base, at({ clock: 1_005_000n }), true, undefined],
    ['reset (reboot)', base, at({ resetCount: 8, restartCount: 0, clock: 10n }), false, 'TPM_RESET'],
    ['reset count lower (TPM2_Clear)', base, at({ resetCount: 0, restartCount: 0 }), false, 'TPM_RESET'],
    ['restart (resume)', base, at({ restartCount: 3, clock: 1_000_500n }), false, 'TPM_RESTART'],
    ['restart count lower, same reset', base, at({ restartCount: 1 }), false, 'TPM_RESTART'],
    ['clock went back in one boot', base, at({ clock: 999_999n }), false, 'TPM_CLOCK_WENT_BACKWARDS'],
    ['reset and clock back: the reset is the reason', base, at({ resetCount: 8, clock: 5n }), false, 'TPM_RESET'],
    ['safe turned to unsafe in one boot', base, at({ clock: 1_002_500n, safe: false }), false, 'TPM_CLOCK_UNSAFE'],
    ['unsafe after a reset (an unorderly shutdown)', base, at({ resetCount: 8, restartCount: 0, clock: 900_000n, safe: false }), false, 'TPM_RESET'],
    ['still unsafe in one boot', at({ safe: false }), at({ clock: 1_000_100n, safe: false }), true, undefined],
    ['unsafe turned safe (the clock was saved)', at({ safe: false }), at({ clock: 1_000_100n }), true, undefined],
  ];

  it.each(table)('%s', (_name, prev, next, sameBoot, code) => {
    const r = compareClock(prev, next);
    expect(r.sameBoot).toBe(sameBoot);
    expect(r.reason?.code).toBe(code);
    expect(r.safe).toBe(next.safe);
  });

  it('names both values in the reason', () => {
    const r = compareClock(base, at({ resetCount: 9 }));
    expect(r.reason?.message).toMatch(/from 7 to 9/);
    const s = compareClock(base, at({ restartCount: 5 }));
    expect(s.reason?.message).toMatch(/from 2 to 5/);
    const t = compareClock(base, at({ clock: 10n }));
    expect(t.reason?.message).toMatch(/from 1000000 ms to 10 ms/);
  });

  it('records the safe flag of the newer reading, and the elapsed time within a boot', () => {
    const r = compareClock(at({ safe: false }), at({ clock: 1_002_500n, safe: false }));
    expect(r).toEqual({ sameBoot: true, safe: false, elapsedMs: 2500n });
  });

  it('says same boot exactly when both counts are equal, the clock did not go back and did not turn unsafe', () => {
    const info = fc.record({
      clock: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      resetCount: fc.nat(3),
      restartCount: fc.nat(3),
      safe: fc.boolean(),
    });
    fc.assert(
      fc.property(info, info, (a, b) => {
        const r = compareClock(a, b);
        const same = a.resetCount === b.resetCount && a.restartCount === b.restartCount && b.clock >= a.clock && !(a.safe && !b.safe);
        expect(r.sameBoot).toBe(same);
        expect(r.reason === undefined).toBe(same);
      }),
    );
  });
});
