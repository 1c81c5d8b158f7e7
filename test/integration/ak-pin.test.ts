/**
 * The attestation key is pinned in the state folder by the first session that reaches the TPM:
 * a later session that starts while the TPM does not answer trusts the pin, not whatever AK
 * appears first, and a TPM showing another AK never brings the host to TRUSTED.
 */
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSwtpm } from '../helpers/swtpm.js';
import { startDaemon, State } from '../helpers/daemon.js';

describe('attestation key pin', () => {
  it('pins the first AK, keeps it when the TPM is unreachable at start, and refuses a TPM with another AK', async () => {
    const first = await startSwtpm();
    const other = await startSwtpm();
    const state = mkdtempSync(join(tmpdir(), 'attestd-akpin-'));
    try {
      // First session: the TPM answers; its AK becomes the pin.
      const a = await startDaemon({ tcti: first.tcti, stateDir: state });
      const pinned = (await a.status()).akPublicPem;
      expect(pinned).toContain('BEGIN PUBLIC KEY');
      expect(readFileSync(join(state, 'ak.pub')).length).toBeGreaterThan(0);
      expect(a.output()).toContain('attestation key pinned in the state folder');
      await a.stop();

      // Second session: nothing answers at the TCTI; status shows the pin all the same.
      const unreachable = `swtpm:path=${join(state, 'no-tpm.sock')}`;
      const b = await startDaemon({ tcti: unreachable, stateDir: state, waitTrusted: false });
      const s = await b.waitFor((st) => st.state === State.UNTRUSTED, 10_000);
      expect(s.akPublicPem).toBe(pinned);
      expect(b.output()).toContain('attestation key pinned from the state folder');
      await b.stop();

      // Third session: another TPM answers; the stored AK does not load there and the host stays UNTRUSTED.
      const c = await startDaemon({ tcti: other.tcti, stateDir: state, waitTrusted: false });
      const refused = await c.waitFor((st) => st.epoch >= 2, 10_000);
      expect(refused.state).toBe(State.UNTRUSTED);
      expect(refused.akPublicPem).toBe(pinned);
      expect(refused.reasons.join('\n')).toMatch(/does not load under this TPM's storage root key/);
      await c.stop();

      // Fourth session: the stored key is lost and the TPM makes another AK; it is not adopted.
      rmSync(join(state, 'ak.key'));
      const d = await startDaemon({ tcti: first.tcti, stateDir: state, waitTrusted: false });
      const changed = await d.waitFor((st) => st.epoch >= 2, 10_000);
      expect(changed.state).toBe(State.UNTRUSTED);
      expect(changed.akPublicPem).toBe(pinned);
      expect(changed.reasons.join('\n')).toContain('AK_CHANGED');
      expect(d.output()).toContain('the TPM shows another attestation key than the pinned one');
      await d.stop();
    } finally {
      await first.dispose();
      await other.dispose();
      rmSync(state, { recursive: true, force: true });
    }
  }, 60_000);
});
