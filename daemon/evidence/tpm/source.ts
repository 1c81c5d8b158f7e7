/**
 * The TPM as an evidence source for the attestation loop: opens the TPM on demand, and after
 * any failure drops the connection so the next epoch reconnects (a TPM that comes back
 * recovers without a restart). Never used on the lease path.
 */
import { asAttestdError, AttestdError } from '../../base/errors.js';
import type { EkKind } from './ek-template.js';
import type { AkStore } from './ak-store.js';
import { Tpm, type AkRotationEvidence, type EkCertificates, type QuoteResult } from './tpm.js';
import { parseTpmtPublic, type TpmPublicKey } from '../../verify/tpm-public.js';
import type { PcrSelection } from '../../verify/pcr.js';
import type { HashAlg } from '../../verify/tpm-alg.js';

export type { AkRotationEvidence } from './tpm.js';

export interface TpmQuoteEvidence extends QuoteResult {
  ak: TpmPublicKey;
}

export class TpmSource {
  private tpm: Tpm | undefined;
  private banks: HashAlg[] | undefined;

  /** `akStore`: where the AK is kept across restarts (see Tpm.open). */
  constructor(readonly tcti: string, private readonly akStore?: AkStore) {}

  /** Quotes the selected PCRs with `qualifyingData`; throws AttestdError (TPM_*) on failure. */
  async quote(qualifyingData: Buffer, selections: PcrSelection[]): Promise<TpmQuoteEvidence> {
    try {
      this.tpm ??= await Tpm.open(this.tcti, this.akStore);
      const ak = parseTpmtPublic(await this.tpm.attestationKeyPublic());
      const result = await this.tpm.quote(qualifyingData, selections);
      return { ...result, ak };
    } catch (err) {
      await this.drop();
      throw asAttestdError(err);
    }
  }

  /**
   * The allocated PCR banks (see Tpm.pcrBanks); throws AttestdError (TPM_*) on failure. The
   * caller picks which to quote: SHA-1 only when its policy opts in.
   */
  pcrBanks(): Promise<HashAlg[]> {
    // Allocation changes only with a TPM reconfiguration and reboot: asked once per connection.
    if (this.banks && this.tpm) return Promise.resolve(this.banks);
    return this.withTpm(async (tpm) => (this.banks = await tpm.pcrBanks()));
  }

  /**
   * What to quote: the policy's PCRs in every allocated bank (SHA-1 only when the policy opts
   * in), so each epoch records every bank; the policy's own banks are always asked for, even
   * if the TPM were to lack them (the quote then fails, naming the missing bank).
   */
  async selections(policyWants: PcrSelection[], allowSha1: boolean): Promise<PcrSelection[]> {
    const pcrs = [...new Set(policyWants.flatMap((s) => s.pcrs))].sort((a, b) => a - b);
    const banks = new Set(policyWants.map((s) => s.alg));
    for (const b of await this.pcrBanks()) if (b !== 'sha1' || allowSha1) banks.add(b);
    const order: HashAlg[] = ['sha1', 'sha256', 'sha384', 'sha512'];
    return order.filter((b) => banks.has(b)).map((alg) => {
      const own = policyWants.find((s) => s.alg === alg);
      return { alg, pcrs: own ? [...new Set([...own.pcrs, ...pcrs])].sort((a, b) => a - b) : pcrs };
    });
  }

  /** EK certificates from NV, unverified (see Tpm.ekCertificates); throws AttestdError (TPM_*). */
  ekCertificates(): Promise<EkCertificates> {
    return this.withTpm((tpm) => tpm.ekCertificates());
  }

  /**
   * TPM2_ActivateCredential (see Tpm.activateCredential) for a credential made for `akName`,
   * refused with ENROLL_INVALID before the TPM is asked when that is not this TPM's AK.
   */
  activateCredential(ek: EkKind, akName: Buffer, credentialBlob: Buffer, secret: Buffer): Promise<Buffer> {
    return (async () => {
      try {
        this.tpm ??= await Tpm.open(this.tcti, this.akStore);
        const ak = parseTpmtPublic(await this.tpm.attestationKeyPublic());
        if (!ak.name.equals(akName)) throw new AttestdError('ENROLL_INVALID', 'the challenge was made for another attestation key than this daemon\'s');
        return await this.tpm.activateCredential(ek, credentialBlob, secret);
      } catch (err) {
        // A refused credential is the enrolling party's problem, not the session's: keep it.
        if (asAttestdError(err).code === 'TPM_UNAVAILABLE') await this.drop();
        throw asAttestdError(err);
      }
    })();
  }

  /** Replaces the stored AK by one it certifies (see Tpm.rotateAk); `record` makes the rotation durable. */
  rotateAk(record: (rotation: AkRotationEvidence) => Promise<void>): Promise<AkRotationEvidence> {
    return this.withTpm((tpm) => tpm.rotateAk(record));
  }

  private async withTpm<T>(job: (tpm: Tpm) => Promise<T>): Promise<T> {
    try {
      this.tpm ??= await Tpm.open(this.tcti, this.akStore);
      return await job(this.tpm);
    } catch (err) {
      await this.drop();
      throw asAttestdError(err);
    }
  }

  /** The attestation key's public area, or undefined when the TPM cannot be reached. */
  async attestationKey(): Promise<TpmPublicKey | undefined> {
    try {
      this.tpm ??= await Tpm.open(this.tcti, this.akStore);
      return parseTpmtPublic(await this.tpm.attestationKeyPublic());
    } catch {
      await this.drop();
      return undefined;
    }
  }

  private async drop(): Promise<void> {
    const tpm = this.tpm;
    this.tpm = undefined;
    this.banks = undefined;
    await tpm?.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.drop();
  }
}
