/**
 * 1. Lease acquire and renew over the socket: latency with one client, throughput with one
 * and with 64 connections, beside a raw echo server reached through the same framing and
 * the same client code. Each daemon answer has been made durable (write + fdatasync of the
 * audit record, group-committed) before it is sent; that cost is the product and stays in.
 *
 * Daemon and echo measurements alternate in rounds so that a burst of load from the other
 * tenants of this machine lands on both sides rather than on one.
 */
import { statfsSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { attestd } from '../../daemon/gen/proto.js';
import { benchPolicy, startDaemon, startEchoServer } from './servers.js';
import { startSwtpm } from './swtpm.js';
import type { Benchmark, Figure, Outcome } from './report.js';
import { collectGarbage, fmt, msSince, nowNs, summarize, type Summary } from './stats.js';
import { closeAll, connectMany, FramedConnection, latencies, throughput, type Exchange } from './wire.js';

const { Request, Response } = attestd.lease.v1;

const ROUNDS = 3;
const LATENCY = { warmup: 100, count: 1500, maxMs: 1500 };
const THROUGHPUT = { warmupMs: 300, measureMs: 1500 };
const MANY_CLIENTS = 64;

type Build = (seq: number) => Uint8Array;

/** Against the daemon: the answer must be the call's result, never a refusal. */
function daemonExchange(build: Build, result: 'acquireLease' | 'renewLease'): Exchange {
  return async (conn, seq) => {
    const res = Response.decode(await conn.roundTrip(build(seq)));
    if (res.error) throw new Error(`daemon refused: ${res.error.code}: ${res.error.message}`);
    if (res.id !== seq || !res[result]?.lease?.leaseId) throw new Error(`unexpected answer to request ${seq}`);
  };
}

/** Against the echo server: the same request bytes out, decoded on return as what they are. */
function echoExchange(build: Build): Exchange {
  return async (conn, seq) => {
    const res = Request.decode(await conn.roundTrip(build(seq)));
    if (res.id !== seq) throw new Error(`echo returned another frame than request ${seq}`);
  };
}

const acquireRequest: Build = (seq) => Request.encode({ id: seq, acquireLease: {} }).finish();

/** One AcquireLease call that must be granted; `seq` is the request id. */
export const acquireExchange: Exchange = daemonExchange(acquireRequest, 'acquireLease');

/** Runs a then b, ROUNDS times, pooling what each returns. */
async function alternate<T>(a: () => Promise<T>, b: () => Promise<T>): Promise<{ a: T[]; b: T[] }> {
  const out = { a: [] as T[], b: [] as T[] };
  for (let i = 0; i < ROUNDS; i++) {
    collectGarbage();
    out.a.push(await a());
    collectGarbage();
    out.b.push(await b());
  }
  return out;
}

const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;

/** Names the file system the audit log is on: fdatasync on tmpfs would be free and prove nothing. */
function fileSystem(path: string): string {
  const names: Record<number, string> = { 0xef53: 'ext2/3/4', 0x01021994: 'tmpfs', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x794c7630: 'overlayfs' };
  const type = statfsSync(path).type;
  return names[type] ?? `type 0x${type.toString(16)}`;
}

/** Append + fdatasync of an audit-record-sized block on the daemon's file system: the floor under a durable answer. */
async function fdatasyncLatency(dir: string): Promise<Summary> {
  const path = join(dir, 'fdatasync-probe');
  const fh = await open(path, 'a');
  const record = Buffer.alloc(400, 0x5a);
  const samples: number[] = [];
  try {
    for (let i = 0; i < 200; i++) {
      const t = nowNs();
      await fh.write(record);
      await fh.datasync();
      samples.push(msSince(t));
    }
  } finally {
    await fh.close();
    await rm(path, { force: true });
  }
  return summarize(samples);
}

async function run(): Promise<Outcome> {
  const tpm = await startSwtpm();
  const daemon = await startDaemon({ tcti: tpm.tcti, policy: benchPolicy({ interval: '2s', maxAge: '60s', ttl: '60s' }) });
  const echo = await startEchoServer();
  const acquire = acquireExchange;
  const echoAcquire = echoExchange(acquireRequest);

  const one = await FramedConnection.connect(daemon.socket);
  const oneEcho = await FramedConnection.connect(echo.socket);
  const lat = await alternate(() => latencies(one, acquire, LATENCY), () => latencies(oneEcho, echoAcquire, LATENCY));
  const tput1 = await alternate(() => throughput([one], acquire, THROUGHPUT), () => throughput([oneEcho], echoAcquire, THROUGHPUT));

  const many = await connectMany(daemon.socket, MANY_CLIENTS);
  const manyEcho = await connectMany(echo.socket, MANY_CLIENTS);
  const tputN = await alternate(() => throughput(many, acquire, THROUGHPUT), () => throughput(manyEcho, echoAcquire, THROUGHPUT));
  closeAll(many);
  closeAll(manyEcho);

  // Renewal needs the very process that holds the lease: this one.
  const granted = Response.decode(await one.roundTrip(Request.encode({ id: 1, acquireLease: {} }).finish()));
  const leaseId = granted.acquireLease?.lease?.leaseId;
  if (!leaseId) throw new Error(`no lease to renew: ${granted.error?.code ?? 'no answer'}`);
  const renewRequest: Build = (seq) => Request.encode({ id: seq, renewLease: { leaseId } }).finish();
  const renewLat = await alternate(
    () => latencies(one, daemonExchange(renewRequest, 'renewLease'), LATENCY),
    () => latencies(oneEcho, echoExchange(renewRequest), LATENCY),
  );
  const responseBytes = (await one.roundTrip(renewRequest(1))).length;
  one.close();
  oneEcho.close();
  const status = await daemon.status();
  const fs = fileSystem(daemon.stateDir);
  const sync = await fdatasyncLatency(dirname(daemon.stateDir));
  await echo.stop();
  await daemon.stop();
  await tpm.stop();

  const acq = summarize(lat.a.flat());
  const acqEcho = summarize(lat.b.flat());
  const ren = summarize(renewLat.a.flat());
  const renEcho = summarize(renewLat.b.flat());
  const t1 = mean(tput1.a);
  const t1Echo = mean(tput1.b);
  const tN = mean(tputN.a);
  const tNEcho = mean(tputN.b);
  const figures: Figure[] = [
    { metric: 'acquire p50, 1 client', unit: 'ms', value: acq.p50, baseline: acqEcho.p50, better: 'lower',
      target: { text: '<= 1 ms', met: acq.p50 <= 1 } },
    { metric: 'acquire p99, 1 client', unit: 'ms', value: acq.p99, baseline: acqEcho.p99, better: 'lower',
      target: { text: '<= 5 ms', met: acq.p99 <= 5 } },
    { metric: 'renew p50, 1 client', unit: 'ms', value: ren.p50, baseline: renEcho.p50, better: 'lower' },
    { metric: 'renew p99, 1 client', unit: 'ms', value: ren.p99, baseline: renEcho.p99, better: 'lower' },
    { metric: 'acquire throughput, 1 client', unit: '/s', value: t1, baseline: t1Echo, better: 'higher' },
    { metric: `acquire throughput, ${MANY_CLIENTS} clients`, unit: '/s', value: tN, baseline: tNEcho, better: 'higher',
      target: { text: '>= 5000 /s', met: tN >= 5000 } },
  ];
  return {
    baseline: 'echo server (own process, same Unix socket kind, same framing, same client code, same request bytes)',
    figures,
    notes: [
      `every acquire and renew answer waits for its audit record to be written and fdatasync'ed (audit log on ${fs})`,
      `for scale: a bare 400 B append + fdatasync on that file system takes p50 ${fmt(sync.p50)} ms, p99 ${fmt(sync.p99)} ms`,
      `requests ${acquireRequest(1).length} B (acquire) and ${renewRequest(1).length} B (renew); daemon answers ~${responseBytes} B, echo answers equal the request`,
      `${MANY_CLIENTS} clients = ${MANY_CLIENTS} connections from this one process (one identity); ${status.activeLeases} leases active at the end`,
    ],
    details: {
      acquire: acq, acquireEcho: acqEcho, renew: ren, renewEcho: renEcho,
      throughput1: tput1, throughputMany: tputN, fdatasync: sync, clients: MANY_CLIENTS, rounds: ROUNDS, auditFs: fs,
      activeLeasesAtEnd: status.activeLeases,
    },
  };
}

export const leaseBench: Benchmark = { id: 'lease', title: '1. Lease acquire and renew over the Unix socket', run };
