/**
 * Taking a quote whose PCR values are known to be the ones it covers.
 *
 * TPM2_Quote signs a digest of the PCRs, not their values, so the values are read
 * separately. Reading them before and after the quote and finding them equal shows that
 * no quoted PCR changed between the two reads, the quote included; otherwise an extend
 * raced the quote and it is taken again. After the last retry the result is returned as
 * it is: the verifier compares values with the signed digest and rejects a mismatch.
 */
import type { PcrBank } from '../../verify/pcr.js';

export interface StableQuote<Q> {
  quote: Q;
  /** The values read after the quote. */
  banks: PcrBank[];
  /** How many quotes were taken. */
  attempts: number;
  /** Whether the reads around the last quote agreed. */
  stable: boolean;
}

export async function stableQuote<Q>(
  read: () => Promise<PcrBank[]>,
  take: () => Promise<Q>,
  retries: number,
): Promise<StableQuote<Q>> {
  for (let attempt = 1; ; attempt++) {
    const before = await read();
    const quote = await take();
    const banks = await read();
    const stable = sameBanks(before, banks);
    if (stable || attempt > retries) return { quote, banks, attempts: attempt, stable };
  }
}

/** True when both lists hold the same banks, in the same order, with the same values. */
export function sameBanks(a: PcrBank[], b: PcrBank[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((bank, i) => {
    const other = b[i];
    if (other === undefined || other.alg !== bank.alg || other.values.size !== bank.values.size) return false;
    for (const [index, value] of bank.values) {
      const v = other.values.get(index);
      if (v === undefined || !v.equals(value)) return false;
    }
    return true;
  });
}
