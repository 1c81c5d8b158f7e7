/**
 * The attestation key this session trusts: the AK the TPM gave at start or, for a session
 * that started without a TPM, the first AK that produced a passing quote. The loop appraises
 * quotes against it; status and the session record show it.
 */
import type { TpmSource } from '../evidence/tpm/source.js';
import type { EpochState } from '../appraisal/epoch-state.js';
import type { TpmPublicKey } from '../verify/tpm-public.js';

export class AkPin {
  private ak: TpmPublicKey | undefined;

  constructor(private readonly tpm: Pick<TpmSource, 'attestationKey'>) {}

  /** The pinned AK's TPMT_PUBLIC bytes, or undefined while none is pinned. */
  get publicArea(): Buffer | undefined {
    return this.ak?.publicArea;
  }

  /** The pinned AK as SPKI PEM, or '' while none is pinned. */
  pem(): string {
    return this.ak ? (this.ak.key.export({ type: 'spki', format: 'pem' }) as string) : '';
  }

  /** At start: pins whatever AK the TPM gives now; undefined when the TPM does not answer. */
  async pinAtStart(): Promise<TpmPublicKey | undefined> {
    this.ak = await this.tpm.attestationKey();
    return this.ak;
  }

  /** After an epoch: with none pinned yet, a passing one pins the TPM's AK, the one that just quoted. */
  afterEpoch(e: EpochState): void {
    if (!this.ak && e.pass) void this.tpm.attestationKey().then((ak) => { this.ak ??= ak; });
  }
}
