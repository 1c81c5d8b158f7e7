/**
 * 6. Durable audit appends with group commit: 64 appenders (as 64 clients would), each
 * awaiting its own AuditLog.append of a lease-grant record before the next, against an
 * AuditLog in a folder on the repository's file system. Beside it, in the same run and on
 * the same file system, the naive way: one write + fdatasync per record, the same record
 * bytes, one at a time. A third side replays the batch sizes the group commit formed as raw
 * write + fdatasync calls, with none of the log's own work (encoding, CRC32C, Merkle tree,
 * promises): the ceiling for group commit on this disk.
 *
 * The three sides alternate in short rounds so that load from the other tenants of this
 * machine falls on all of them alike; the figures pool the rounds.
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { statfsSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { AuditLog, type AuditBody } from '../../daemon/audit/log.js';
import { encodeFrame } from '../../daemon/audit/frame.js';
import { attestd } from '../../daemon/gen/proto.js';
import { signToken } from '../../daemon/lease/token.js';
import type { Signer } from '../../daemon/base/signer.js';
import { tempDir } from './processes.js';
import type { Benchmark, Outcome } from './report.js';
import { collectGarbage, fmt, msSince, nowNs, percentile } from './stats.js';

const APPENDERS = 64;
/** A second, larger crowd: with one append in flight per appender, a batch holds at most APPENDERS records. */
const MANY_APPENDERS = 256;
const ROUNDS = 3;
const ROUND_MS = 1000;
const WARMUP_MS = 300;
const DISTINCT_RECORDS = 256;
const TARGET = 20_000;
const Kind = attestd.audit.v1.LeaseDecision.Kind;

/** Grant records as the lease manager writes them, each with its own signed token. */
function grantBodies(): AuditBody[] {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const signer: Signer = { sign: (d) => sign(null, d, privateKey), publicKey: () => raw };
  const policySha256 = randomBytes(32);
  const now = Date.now();
  return Array.from({ length: DISTINCT_RECORDS }, (_, i) => {
    const leaseId = randomBytes(16).toString('hex');
    const workload = { pid: 41_000 + i, uid: 1000, gid: 1000, startTime: 9_120_000 + i, exePath: '/usr/bin/python3.11',
      exeSha256: randomBytes(32), cgroup: `/system.slice/gpu-job-${i % 64}.scope` };
    const claims = { version: 1, leaseId, epoch: 42, sessionPublicKey: raw, rule: 'dev', policySha256, scopes: ['gpu:all'], workload,
      issuedAtMs: now, expiresAtMs: now + 6000, renewal: 0 };
    return { leaseDecision: { kind: Kind.GRANT, leaseId, epoch: 42, rule: 'dev', workload, token: signToken(claims, signer), expiresAtMs: now + 6000 } };
  });
}

/** Names the file system: fdatasync on tmpfs would be free and prove nothing. */
function fileSystem(path: string): string {
  const names: Record<number, string> = { 0xef53: 'ext4', 0x01021994: 'tmpfs', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x794c7630: 'overlayfs' };
  const type = statfsSync(path).type;
  return names[type] ?? `type 0x${type.toString(16)}`;
}

interface Round {
  records: number;
  ms: number;
  /** Process CPU time (user + system, all threads) over the round. */
  cpuMs: number;
  latencies: number[];
  batches: number[];
}

/** `appenders` loops of append-and-await for `ms`; batch sizes from the log's durable callbacks. */
async function attestdRound(log: AuditLog, bodies: AuditBody[], batches: number[], ms: number, appenders = APPENDERS): Promise<Round> {
  const latencies: number[] = [];
  batches.length = 0;
  let stop = false;
  const timer = setTimeout(() => { stop = true; }, ms);
  const cpu = process.cpuUsage();
  const start = nowNs();
  await Promise.all(Array.from({ length: appenders }, async (_, a) => {
    for (let k = a; !stop; k += appenders) {
      const t = nowNs();
      await log.append(bodies[k % bodies.length]!);
      latencies.push(msSince(t));
    }
  }));
  clearTimeout(timer);
  return { records: latencies.length, ms: msSince(start), cpuMs: cpuSince(cpu), latencies, batches: [...batches] };
}

/** write + fdatasync of `sizes[i]` records at a time, cycling through `sizes`, for `ms`. */
async function rawRound(fh: FileHandle, frame: Buffer, sizes: number[], ms: number): Promise<Round> {
  if (sizes.length === 0) throw new Error('no batch sizes to replay');
  const most = sizes.reduce((a, b) => Math.max(a, b), 0);
  const block = Buffer.concat(Array.from({ length: most }, () => frame));
  const latencies: number[] = [];
  let records = 0;
  const cpu = process.cpuUsage();
  const start = nowNs();
  for (let i = 0; msSince(start) < ms; i++) {
    const n = sizes[i % sizes.length]!;
    const t = nowNs();
    await fh.write(block, 0, n * frame.length);
    await fh.datasync();
    latencies.push(msSince(t));
    records += n;
  }
  return { records, ms: msSince(start), cpuMs: cpuSince(cpu), latencies, batches: [] };
}

function cpuSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

/** CPU microseconds per record over all rounds of one side. */
const cpuPerRecord = (rounds: Round[]) => (1000 * rounds.reduce((s, r) => s + r.cpuMs, 0)) / rounds.reduce((s, r) => s + r.records, 0);
/** p50 and p99 only: summarize() spreads its samples into Math.min, too many for the call stack here. */
function latency(rounds: Round[]): { p50: number; p99: number; n: number } {
  const all = rounds.flatMap((r) => r.latencies);
  return { p50: percentile(all, 50), p99: percentile(all, 99), n: all.length };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const rate = (rounds: Round[]) => rounds.reduce((s, r) => s + r.records, 0) / (rounds.reduce((s, r) => s + r.ms, 0) / 1000);

async function run(): Promise<Outcome> {
  const dir = await tempDir('attestd-bench-append-');
  const fs = fileSystem(dir);
  const bodies = grantBodies();
  const frames = bodies.map((b) => encodeFrame(attestd.audit.v1.AuditRecord.encode({ ...b, seq: 123_456, timeMs: Date.now() }).finish()));
  const frame = frames[0]!;
  const log = await AuditLog.open({ dir: join(dir, 'audit') });
  const current: number[] = [];
  let durable = 0;
  log.onDurable((size) => {
    current.push(size - durable);
    durable = size;
  });
  const naiveFile = await open(join(dir, 'naive'), 'a');
  const batchedFile = await open(join(dir, 'batched'), 'a');
  const sides = { log: [] as Round[], many: [] as Round[], naive: [] as Round[], batched: [] as Round[] };
  try {
    await attestdRound(log, bodies, current, WARMUP_MS);
    for (let i = 0; i < ROUNDS; i++) {
      collectGarbage();
      durable = log.size;
      const r = await attestdRound(log, bodies, current, ROUND_MS);
      sides.log.push(r);
      collectGarbage();
      sides.naive.push(await rawRound(naiveFile, frame, [1], ROUND_MS));
      collectGarbage();
      sides.batched.push(await rawRound(batchedFile, frame, r.batches, ROUND_MS));
      collectGarbage();
      sides.many.push(await attestdRound(log, bodies, current, ROUND_MS, MANY_APPENDERS));
    }
  } finally {
    await log.close();
    await naiveFile.close();
    await batchedFile.close();
  }
  const lat = latency(sides.log);
  const naiveLat = latency(sides.naive);
  const batchedLat = latency(sides.batched);
  const manyLat = latency(sides.many);
  const batches = sides.log.flatMap((r) => r.batches);
  const meanBatch = mean(batches);
  const logRate = rate(sides.log);
  const naiveRate = rate(sides.naive);
  const batchedRate = rate(sides.batched);
  const meanFrame = frames.reduce((s, f) => s + f.length, 0) / frames.length;
  return {
    baseline: `raw write + fdatasync of the same record bytes on the same file system: one record per fdatasync (naive), ` +
      `and in the last row the batch sizes attestd's group commit formed`,
    figures: [
      { metric: `durable appends/s, ${APPENDERS} appenders`, unit: '/s', value: logRate, baseline: naiveRate, better: 'higher',
        target: { text: `>= ${TARGET.toLocaleString('en-US')} /s`, met: logRate >= TARGET } },
      { metric: `durable appends/s, ${MANY_APPENDERS} appenders`, unit: '/s', value: rate(sides.many), baseline: naiveRate, better: 'higher' },
      { metric: `append latency p50, ${APPENDERS} appenders`, unit: 'ms', value: lat.p50, baseline: naiveLat.p50, better: 'lower' },
      { metric: `append latency p99, ${APPENDERS} appenders`, unit: 'ms', value: lat.p99, baseline: naiveLat.p99, better: 'lower' },
      { metric: 'appends/s vs raw batched fdatasync', unit: '/s', value: logRate, baseline: batchedRate, better: 'higher' },
    ],
    notes: [
      `audit log and raw files in ${dir} on ${fs}` + (fs === 'tmpfs' ? ' (tmpfs: fdatasync is free, these figures prove nothing)' : ''),
      `records: lease grants with signed tokens, ${fmt(meanFrame)} B framed; ${ROUNDS} alternating rounds of ${ROUND_MS} ms per side`,
      `with ${APPENDERS} appenders group commit formed ${batches.length.toLocaleString('en-US')} batches of ${fmt(meanBatch)} records on average ` +
        `(${fmt(batches.length / (sides.log.reduce((s, r) => s + r.ms, 0) / 1000))} fdatasyncs/s); raw batched write + fdatasync ` +
        `of those sizes takes p50 ${fmt(batchedLat.p50)} ms, p99 ${fmt(batchedLat.p99)} ms`,
      `CPU per record (process, all threads): attestd ${fmt(cpuPerRecord(sides.log))} us, naive ${fmt(cpuPerRecord(sides.naive))} us, ` +
        `raw batched ${fmt(cpuPerRecord(sides.batched))} us; over the attestd rounds the process used ` +
        `${fmt((100 * sides.log.reduce((s, r) => s + r.cpuMs, 0)) / sides.log.reduce((s, r) => s + r.ms, 0))}% of one core`,
      `with ${MANY_APPENDERS} appenders: ${fmt(mean(sides.many.flatMap((r) => r.batches)))} records per batch, ` +
        `p50 ${fmt(manyLat.p50)} ms, p99 ${fmt(manyLat.p99)} ms`,
      'latency: attestd is one appender\'s wait with 64 in flight (it includes waiting for the batch in progress); naive is one record alone',
    ],
    details: { appenders: APPENDERS, fileSystem: fs, cpuUsPerRecord: { log: cpuPerRecord(sides.log), naive: cpuPerRecord(sides.naive), batched: cpuPerRecord(sides.batched) }, latency: lat, naiveLatency: naiveLat, batchedLatency: batchedLat, meanBatch,
      manyLatency: manyLat, rates: { log: sides.log.map((r) => r.records / (r.ms / 1000)), many: sides.many.map((r) => r.records / (r.ms / 1000)), naive: sides.naive.map((r) => r.records / (r.ms / 1000)),
        batched: sides.batched.map((r) => r.records / (r.ms / 1000)) } },
  };
}

export const auditAppendBench: Benchmark = { id: 'append', title: '6. Durable audit appends with group commit', run };
