// The epoch verdict on the TPM clock of two quotes in a row, signed here with a software AK:
// a clock that turned unsafe within one boot fails the epoch (a TPM state rolled back), a
// reset ends the chain, and an unsafe clock that stays unsafe (the TPM has not yet saved it
// after an unorderly shutdown) is no reason to fail.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { epochVerdict } from '../../daemon/appraisal/epoch-verdict.js';
import { parsePolicy } from '../../daemon/policy/parse.js';
import { pcrDigest, type PcrSelection } from '../../daemon/verify/pcr.js';
import type { ClockInfo } from '../../daemon/verify/tpm-attest.js';
import { buildAttest, eccTpmtPublic, ecdsaSign, p256, syntheticBanks } from './verify-helpers.js';

const SELECTIONS: PcrSelection[] = [{ alg: 'sha256', pcrs: [16] }];
const BANKS = syntheticBanks(['sha256'], [16]);
const POLICY = parsePolicy(
  ['version: 1', 'attestation: {interval: 2s, max_age: 6s}', 'pcrs:', '  sha256:',
    `    16: "${BANKS[0]!.values.get(16)!.toString('hex')}"`, 'rules:', '  - name: any', '    match: {uids: [0]}', '    lease: {ttl: 30s, scopes: ["gpu:all"]}', ''].join('\n'),
  'test.yaml',
).policy;
const key = p256();
const akPublic = eccTpmtPublic(key.publicKey);

function verdictFor(previousClock: ClockInfo | undefined, clockInfo: ClockInfo) {
  const binding = randomBytes(32);
  const attest = buildAttest({ extraData: binding, selections: SELECTIONS, pcrDigest: pcrDigest(SELECTIONS, BANKS, 'sha256'), clockInfo });
  return epochVerdict({
    policy: POLICY, binding, nowMs: Date.now(), trustedAkPublic: akPublic, previousClock,
    tpm: { attest, signature: ecdsaSign(key.privateKey, attest, 'sha256', 32), banks: BANKS, akPublic },
  });
}

const safe: ClockInfo = { clock: 5_000n, resetCount: 3, restartCount: 0, safe: true };

describe('epoch verdict on the TPM clock', () => {
  it('passes a later quote of the same boot', () => {
    const v = verdictFor(safe, { ...safe, clock: 7_000n });
    expect(v.pass).toBe(true);
    expect(v.chainEnded).toBeUndefined();
  });

  it('fails a quote whose clock turned unsafe within one boot', () => {
    const v = verdictFor(safe, { ...safe, clock: 7_000n, safe: false });
    expect(v.pass).toBe(false);
    expect(v.reasons.map((r) => r.code)).toEqual(['TPM_CLOCK_UNSAFE']);
  });

  it('passes a quote that stays unsafe, or turns safe, within one boot', () => {
    const unsafe = { ...safe, safe: false };
    expect(verdictFor(unsafe, { ...unsafe, clock: 7_000n }).pass).toBe(true);
    expect(verdictFor(unsafe, { ...safe, clock: 7_000n }).pass).toBe(true);
  });

  it('ends the chain, without failing, on an unsafe clock after a reset', () => {
    const v = verdictFor(safe, { clock: 1_000n, resetCount: 4, restartCount: 0, safe: false });
    expect(v.pass).toBe(true);
    expect(v.chainEnded?.code).toBe('TPM_RESET');
  });

  it('fails a clock that went back within one boot', () => {
    expect(verdictFor(safe, { ...safe, clock: 4_999n }).reasons.map((r) => r.code)).toEqual(['TPM_CLOCK_WENT_BACKWARDS']);
  });
});
