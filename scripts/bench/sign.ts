/**
 * 2. Ed25519 signing of a token-sized message: the native session key (private half in
 * locked native memory, called through daemon/native.ts as the daemon calls it) beside
 * node:crypto's crypto.sign with a generated Ed25519 KeyObject. Both sides sign the same
 * bytes. Many short timed rounds alternate between them, so load from other tenants of
 * the machine falls on both sides alike; the median round of each side is reported, and
 * the median ratio of back-to-back round pairs is noted as a cross-check.
 */
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { createSessionKey } from '../../daemon/native.js';
import { ed25519PublicKey } from '../../daemon/verify/lease-token.js';
import type { Benchmark, Outcome } from './report.js';
import { collectGarbage, fmt, median, msSince, nowNs } from './stats.js';

/** About the size of a signed LeaseToken's claims with their context string. */
const MESSAGE_BYTES = 300;
const ROUNDS = 30;
const ROUND_MS = 50;
const BATCH = 200;

/** Signing operations per second over one round of about ROUND_MS. */
function round(signOnce: () => unknown): number {
  for (let i = 0; i < BATCH; i++) signOnce();
  let ops = 0;
  const start = nowNs();
  let elapsed = 0;
  while (elapsed < ROUND_MS) {
    for (let i = 0; i < BATCH; i++) signOnce();
    ops += BATCH;
    elapsed = msSince(start);
  }
  return (ops * 1000) / elapsed;
}

function spread(rounds: number[]): string {
  return `${fmt(Math.min(...rounds))}-${fmt(Math.max(...rounds))}`;
}

async function run(): Promise<Outcome> {
  const message = randomBytes(MESSAGE_BYTES);
  const key = createSessionKey();
  const { privateKey } = generateKeyPairSync('ed25519');
  try {
    // Both must produce signatures that verify, or the comparison is of nothing.
    const nativeSig = key.sign(message);
    if (!verify(null, message, ed25519PublicKey(key.publicKey()), nativeSig)) throw new Error('native signature does not verify');
    const nativeRounds: number[] = [];
    const nodeRounds: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      collectGarbage();
      nativeRounds.push(round(() => key.sign(message)));
      collectGarbage();
      nodeRounds.push(round(() => sign(null, message, privateKey)));
    }
    const nativeOps = median(nativeRounds);
    const nodeOps = median(nodeRounds);
    const pairedRatio = median(nativeRounds.map((n, i) => n / nodeRounds[i]!));
    return {
      baseline: 'node:crypto crypto.sign(null, msg, ed25519 KeyObject), same message, alternating rounds',
      figures: [
        { metric: `sign ${MESSAGE_BYTES} B, ops/s`, unit: 'ops/s', value: nativeOps, baseline: nodeOps, better: 'higher',
          target: { text: '>= node:crypto', met: nativeOps >= nodeOps } },
        { metric: `sign ${MESSAGE_BYTES} B, time per op`, unit: 'ns', value: 1e9 / nativeOps, baseline: 1e9 / nodeOps, better: 'lower' },
      ],
      notes: [
        `median of ${ROUNDS} alternating rounds of ~${ROUND_MS} ms each side; median ratio of back-to-back round pairs ${fmt(pairedRatio)}x`,
        `round spread (other load on the machine): native ${spread(nativeRounds)}, node:crypto ${spread(nodeRounds)} ops/s`,
        'both sides sign with OpenSSL (the native core links the copy inside node), so parity is the expected outcome',
      ],
      details: { messageBytes: MESSAGE_BYTES, pairedRatio, nativeRounds, nodeRounds },
    };
  } finally {
    key.close();
  }
}

export const signBench: Benchmark = { id: 'sign', title: '2. Ed25519 signing, native session key', run };
