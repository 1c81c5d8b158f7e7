/**
 * Sending one ESYS command with the resends that TPM warnings allow: TPM_RC_RETRY,
 * TPM_RC_YIELDED and TPM_RC_TESTING mean "not now", so the same command goes again after a
 * short pause, a bounded number of times.
 */
import { isTransientTpmWarning } from './rc.js';

/** Resends of a command the TPM answered with a transient warning, and the pause between. */
const WARNING_RETRIES = 3;
const WARNING_PAUSE_MS = 50;

/** Runs `send` again while the TPM answers with a transient warning; returns the last rc. */
export async function sendCommand(send: () => Promise<number>): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const rc = await send();
    if (!isTransientTpmWarning(rc) || attempt >= WARNING_RETRIES) return rc;
    await new Promise((resolve) => setTimeout(resolve, WARNING_PAUSE_MS));
  }
}
