/**
 * Boot continuity from quotes of a real software TPM: two quotes in one boot are the same
 * boot; a swtpm stopped and started again (Startup(CLEAR) with no orderly shutdown: a TPM
 * Reset) shows a higher resetCount; an orderly Shutdown(STATE) before the restart makes it a
 * TPM Restart instead. Every session loads the same stored AK, so the quotes of every boot
 * verify with it.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileAkStore } from '../../daemon/evidence/tpm/ak-store.js';
import { Tpm } from '../../daemon/evidence/tpm/tpm.js';
import { compareClock } from '../../daemon/verify/clock.js';
import { verifyQuote } from '../../daemon/verify/quote.js';
import type { ClockInfo } from '../../daemon/verify/tpm-attest.js';
import { parseTpmtPublic } from '../../daemon/verify/tpm-public.js';
import { startSwtpm, tpm2, type Swtpm } from '../helpers/swtpm.js';

describe('TPM clock and reset counters on swtpm', () => {
  let sw: Swtpm;
  let tpm: Tpm | undefined;
  let akPublic: Buffer;

  /** A verified quote's clock info, on a fresh session when the TPM was restarted. */
  async function clockNow(): Promise<ClockInfo> {
    tpm ??= await Tpm.open(sw.tcti, fileAkStore(join(sw.dir, 'ak.key')));
    const nonce = randomBytes(16);
    const q = await tpm.quote(nonce, [{ alg: 'sha256', pcrs: [0, 1, 2] }]);
    const ak = parseTpmtPublic(akPublic);
    return verifyQuote({ attest: q.attest, signature: q.signature, pcrs: q.banks, ak, expectedNonce: nonce }).attest.clockInfo;
  }

  async function restart(orderly: boolean): Promise<void> {
    await tpm?.close();
    tpm = undefined;
    if (orderly) {
      const r = await tpm2(['shutdown'], sw.tcti);
      expect(r.code).toBe(0);
    }
    await sw.stop();
    await sw.start();
  }

  beforeAll(async () => {
    sw = await startSwtpm();
    tpm = await Tpm.open(sw.tcti, fileAkStore(join(sw.dir, 'ak.key')));
    akPublic = await tpm.attestationKeyPublic();
  });

  afterAll(async () => {
    await tpm?.close();
    await sw?.dispose();
  });

  it('sees one boot between two quotes, with the clock moving forward', async () => {
    const a = await clockNow();
    await new Promise((r) => setTimeout(r, 20));
    const b = await clockNow();
    const c = compareClock(a, b);
    expect(c.sameBoot).toBe(true);
    expect(c.reason).toBeUndefined();
    expect(c.elapsedMs).toBeGreaterThanOrEqual(0n);
    expect(c.safe).toBe(b.safe);
  });

  it('reports a TPM reset after swtpm is stopped and started again', async () => {
    const before = await clockNow();
    await restart(false);
    const after = await clockNow();
    expect(after.resetCount).toBe(before.resetCount + 1);
    const c = compareClock(before, after);
    expect(c.sameBoot).toBe(false);
    expect(c.reason?.code).toBe('TPM_RESET');
    expect(c.reason?.message).toContain(`from ${before.resetCount} to ${after.resetCount}`);
  });

  it('reports a TPM restart after an orderly Shutdown(STATE)', async () => {
    const before = await clockNow();
    await restart(true);
    const after = await clockNow();
    expect(after.resetCount).toBe(before.resetCount);
    expect(after.restartCount).toBe(before.restartCount + 1);
    const c = compareClock(before, after);
    expect(c.sameBoot).toBe(false);
    expect(c.reason?.code).toBe('TPM_RESTART');
  });
});
