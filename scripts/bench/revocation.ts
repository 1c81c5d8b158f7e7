/**
 * 5. Drift to revocation at a watcher: with a 500 ms attestation interval, a process holds a
 * lease and watches it; PCR 16 is extended with tpm2_pcrextend (the drift) and the time until
 * the REVOKED push arrives is measured. Timing starts when tpm2_pcrextend is launched, so
 * the figure includes that command's own start-up and never undercounts. Between runs
 * PCR 16 is reset and the daemon is waited on until a new epoch passes (TRUSTED). A random
 * pause before each drift spreads it over the phase of the attestation cycle.
 *
 * The baseline is the daemon's attestation period measured in the same run (interval plus
 * the time one quote and appraisal take): a drift can only be seen at the next cycle, so
 * the worst case is one full period.
 */
import { randomInt } from 'node:crypto';
import { AttestdClient } from '../../daemon/client/client.js';
import { attestd } from '../../daemon/gen/proto.js';
import { benchPolicy, startDaemon, State, type BenchDaemon } from './servers.js';
import { startSwtpm, tpm2Ok } from './swtpm.js';
import type { Benchmark, Outcome } from './report.js';
import { median, msSince, nowNs, sleep } from './stats.js';

const Kind = attestd.lease.v1.LeaseEvent.Kind;
const INTERVAL_MS = 500;
const RUNS = 5;
const TARGET_MS = INTERVAL_MS + 100;
const REVOKE_TIMEOUT_MS = 10_000;
const DRIFT = `16:sha256=${'5a'.repeat(32)}`;

/** Periods between consecutive epochs, from the appraisal times GetStatus reports. */
async function attestationPeriods(daemon: BenchDaemon, epochs: number): Promise<number[]> {
  const seen = new Map<number, number>();
  const end = Date.now() + (epochs + 2) * INTERVAL_MS * 3;
  while (seen.size < epochs + 1 && Date.now() < end) {
    const s = await daemon.status();
    seen.set(Number(s.epoch), Number(s.appraisedAtMs));
    await sleep(10);
  }
  const periods: number[] = [];
  for (const [epoch, at] of seen) {
    const prev = seen.get(epoch - 1);
    if (prev !== undefined) periods.push(at - prev);
  }
  if (periods.length === 0) throw new Error('no two consecutive epochs observed');
  return periods;
}

interface RunResult {
  /** From launching tpm2_pcrextend to the REVOKED push. */
  fromLaunchMs: number;
  /** From tpm2_pcrextend's exit (the PCR has certainly changed) to the push. */
  fromExitMs: number;
  reasonCode: string;
}

async function oneRun(daemon: BenchDaemon, tcti: string): Promise<RunResult> {
  await daemon.waitFor((s) => s.state === State.TRUSTED);
  const client = await AttestdClient.connect(daemon.socket);
  try {
    const leaseId = (await client.call({ acquireLease: {} })).acquireLease?.lease?.leaseId;
    if (!leaseId) throw new Error('no lease granted');
    let timer: NodeJS.Timeout | undefined;
    const revoked = new Promise<{ at: bigint; reasonCode: string }>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no REVOKED push within ${REVOKE_TIMEOUT_MS} ms`)), REVOKE_TIMEOUT_MS);
      void client.call({ watchLease: { leaseId } }, (push) => {
        if (push.leaseEvent?.kind === Kind.REVOKED) resolve({ at: nowNs(), reasonCode: push.leaseEvent.reasonCode ?? '' });
      }).then((first) => {
        if (first.leaseEvent?.kind !== Kind.ACTIVE) reject(new Error('watch did not start ACTIVE'));
      }, reject);
    });
    // Let the watch register before the drift, then land the drift at a random point of the cycle.
    await sleep(20 + randomInt(INTERVAL_MS));
    const launched = nowNs();
    await tpm2Ok(['tpm2_pcrextend', DRIFT], tcti);
    const extended = nowNs();
    try {
      const r = await revoked;
      return { fromLaunchMs: Number(r.at - launched) / 1e6, fromExitMs: Number(r.at - extended) / 1e6, reasonCode: r.reasonCode };
    } finally {
      clearTimeout(timer);
    }
  } finally {
    client.close();
    await tpm2Ok(['tpm2_pcrreset', '16'], tcti);
  }
}

async function run(): Promise<Outcome> {
  const tpm = await startSwtpm();
  const daemon = await startDaemon({ tcti: tpm.tcti, policy: benchPolicy({ interval: `${INTERVAL_MS}ms`, maxAge: '60s', ttl: '60s' }) });
  const periods = await attestationPeriods(daemon, 4);
  const runs: RunResult[] = [];
  const start = nowNs();
  for (let i = 0; i < RUNS; i++) runs.push(await oneRun(daemon, tpm.tcti));
  const runSeconds = msSince(start) / 1000;
  await daemon.stop();
  await tpm.stop();

  const lat = runs.map((r) => r.fromLaunchMs);
  const period = median(periods);
  const row = (metric: string, value: number) => ({
    metric, unit: 'ms', value, baseline: period, better: 'lower' as const,
    target: { text: `<= ${TARGET_MS} ms`, met: value <= TARGET_MS },
  });
  return {
    baseline: `the daemon's attestation period (interval ${INTERVAL_MS} ms + quote and appraisal), median of ${periods.length} measured`,
    figures: [
      row(`drift -> REVOKED, min of ${RUNS}`, Math.min(...lat)),
      row(`drift -> REVOKED, median of ${RUNS}`, median(lat)),
      row(`drift -> REVOKED, max of ${RUNS}`, Math.max(...lat)),
    ],
    notes: [
      `timed from launching tpm2_pcrextend; from its exit: ${runs.map((r) => r.fromExitMs.toFixed(0)).join(', ')} ms`,
      `reason codes pushed: ${[...new Set(runs.map((r) => r.reasonCode))].join(', ')}; ${RUNS} runs in ${runSeconds.toFixed(1)} s`,
    ],
    details: { intervalMs: INTERVAL_MS, periodsMs: periods, runs },
  };
}

export const revocationBench: Benchmark = { id: 'revocation', title: '5. PCR drift to revocation at a watcher', run };
