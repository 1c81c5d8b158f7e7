/**
 * The attestation key the daemon trusts, pinned for good: the first AK of the first session
 * that reached the TPM is written to the state folder (`ak.pub`, its TPMT_PUBLIC), and every
 * later session trusts that one. A session that starts while the TPM does not answer takes the
 * pin from the state folder; with no pin there yet, it pins the TPM's AK the first time the TPM
 * answers, before any quote is appraised. A TPM that later shows another AK is not adopted:
 * every quote it signs fails with AK_CHANGED until an operator removes the pin (a replaced TPM).
 * The loop appraises quotes against the pin; status and the session record show it. Only an
 * AK rotation the old key certified (`--rotate-ak`, ak-rotation.ts) moves the pin to another key.
 */
import { open, readFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { TpmSource } from '../evidence/tpm/source.js';
import { parseTpmtPublic, type TpmPublicKey } from '../verify/tpm-public.js';

export const AK_PIN_FILE = 'ak.pub';

type Log = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export class AkPin {
  private ak: TpmPublicKey | undefined;
  private readonly file: string | undefined;

  /** `stateDir`: where the pin is kept; without one (tests) the pin lasts for the session only. */
  constructor(private readonly tpm: Pick<TpmSource, 'attestationKey'>, stateDir?: string, private readonly log: Log = () => undefined) {
    this.file = stateDir === undefined ? undefined : join(stateDir, AK_PIN_FILE);
  }

  /** The pinned AK's TPMT_PUBLIC bytes, or undefined while none is pinned. */
  get publicArea(): Buffer | undefined {
    return this.ak?.publicArea;
  }

  /** The pinned AK as SPKI PEM, or '' while none is pinned. */
  pem(): string {
    return this.ak ? (this.ak.key.export({ type: 'spki', format: 'pem' }) as string) : '';
  }

  /**
   * At start: the pin from the state folder, or else the TPM's AK, which becomes the pin.
   * Returns the TPM's own AK (undefined when the TPM does not answer).
   */
  async pinAtStart(): Promise<TpmPublicKey | undefined> {
    this.ak = await this.stored();
    const fromTpm = await this.tpm.attestationKey();
    if (this.ak) {
      this.log('info', 'attestation key pinned from the state folder', { ak_pin: this.file });
      if (fromTpm && !fromTpm.publicArea.equals(this.ak.publicArea)) {
        this.log('error', 'the TPM shows another attestation key than the pinned one; quotes fail with AK_CHANGED until the pin is removed',
          { ak_pin: this.file });
      }
    } else if (fromTpm) {
      await this.pin(fromTpm);
    }
    return fromTpm;
  }

  /** Before an epoch is appraised: with none pinned yet, pins the TPM's AK if it answers now. */
  async ensure(): Promise<void> {
    if (this.ak) return;
    const fromTpm = await this.tpm.attestationKey();
    if (fromTpm && !this.ak) await this.pin(fromTpm);
  }

  private async pin(ak: TpmPublicKey): Promise<void> {
    this.ak = ak;
    if (!this.file) return;
    try {
      await writePinFile(this.file, ak.publicArea);
      this.log('info', 'attestation key pinned in the state folder', { ak_pin: this.file });
    } catch (err) {
      this.log('error', 'attestation key pin not written; it holds for this session only', { ak_pin: this.file, err: String(err) });
    }
  }

  /** The stored pin; a pin that does not parse as a restricted signing key is refused loudly. */
  private async stored(): Promise<TpmPublicKey | undefined> {
    return this.file === undefined ? undefined : readPinFile(this.file);
  }
}

/** The pin in `file`, or undefined when there is none; one that is no restricted signing key throws. */
export async function readPinFile(file: string): Promise<TpmPublicKey | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const ak = parseTpmtPublic(bytes);
  if (!ak.restricted || !ak.sign) throw new Error(`${file} does not hold a restricted signing key`);
  return ak;
}

/**
 * Writes the pin whole under a temporary name, flushed, then renamed and the folder flushed:
 * a crash leaves the old pin or the new one, never half of either.
 */
export async function writePinFile(file: string, publicArea: Buffer): Promise<void> {
  const fh = await open(`${file}.tmp`, 'w', 0o640);
  try {
    await fh.writeFile(publicArea);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(`${file}.tmp`, file);
  const dir = await open(dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
