/**
 * 4. Daemon memory with 10,000 active leases: resident set size of the daemon process idle
 * (TRUSTED, no lease: the baseline) and again once 10,000 leases granted over several
 * connections are all live. RSS is read from /proc/PID/status (VmRSS), as a median of a few
 * readings, after a pause that lets the daemon's garbage collector catch up.
 */
import { procMemoryBytes } from './processes.js';
import { benchPolicy, startDaemon } from './servers.js';
import { startSwtpm } from './swtpm.js';
import type { Benchmark, Outcome } from './report.js';
import { acquireExchange } from './lease.js';
import { median, sleep } from './stats.js';
import { closeAll, connectMany } from './wire.js';

const LEASES = 10_000;
const CONNECTIONS = 32;
const SETTLE_MS = 1500;
const MB = 1e6;

async function settledRss(pid: number): Promise<number> {
  await sleep(SETTLE_MS);
  const readings: number[] = [];
  for (let i = 0; i < 5; i++) {
    readings.push(procMemoryBytes(pid, 'VmRSS'));
    await sleep(100);
  }
  return median(readings);
}

async function run(): Promise<Outcome> {
  const tpm = await startSwtpm();
  const daemon = await startDaemon({ tcti: tpm.tcti, policy: benchPolicy({ interval: '2s', maxAge: '60s', ttl: '60s' }) });
  const idle = await settledRss(daemon.pid);

  const conns = await connectMany(daemon.socket, CONNECTIONS);
  let issued = 0;
  const start = Date.now();
  await Promise.all(conns.map(async (conn) => {
    let seq = 0;
    while (issued < LEASES) {
      issued++;
      await acquireExchange(conn, ++seq);
    }
  }));
  const acquireSeconds = (Date.now() - start) / 1000;
  const active = (await daemon.status()).activeLeases;
  if (active < LEASES) throw new Error(`only ${active} of ${LEASES} leases are active`);
  const loaded = await settledRss(daemon.pid);
  const stillActive = (await daemon.status()).activeLeases;
  const peak = procMemoryBytes(daemon.pid, 'VmHWM');
  closeAll(conns);
  await daemon.stop();
  await tpm.stop();

  return {
    baseline: 'the same daemon process idle (TRUSTED, no leases), read in this run',
    figures: [
      { metric: `RSS with ${LEASES.toLocaleString('en-US')} active leases`, unit: 'MB', value: loaded / MB, baseline: idle / MB, better: 'lower',
        target: { text: '<= 100 MB', met: loaded <= 100 * MB } },
    ],
    notes: [
      `${((loaded - idle) / LEASES).toFixed(0)} B of RSS per lease; leases granted over ${CONNECTIONS} connections in ${acquireSeconds.toFixed(1)} s; ${stillActive} active at the second reading`,
      `peak RSS (VmHWM) ${(peak / MB).toFixed(1)} MB; MB = 10^6 bytes`,
    ],
    details: { idleBytes: idle, loadedBytes: loaded, peakBytes: peak, leases: LEASES, activeAtReading: stillActive, connections: CONNECTIONS, acquireSeconds },
  };
}

export const memoryBench: Benchmark = { id: 'memory', title: '4. Daemon memory with 10,000 active leases', run };
