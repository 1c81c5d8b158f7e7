/**
 * 7. Offline verification of a 1,000,000-record audit log, run exactly as `attestctl audit
 * verify` runs it (readSegments, framesOf, LogVerifier.record per frame, finish with the
 * published checkpoint), beside a plain SHA-256 pass over the same segment files: the least
 * any check of every byte costs. The log is what a busy daemon writes (see audit-log-gen.ts)
 * and is generated once, then reused from its cache.
 *
 * Where the time goes is read from a sampling CPU profile of the timed run itself (1 ms
 * interval, a small cost): on this shared machine, parts measured in separate passes would
 * each see a different load. The SHA-256 passes before and after are averaged for the same
 * reason.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Session, type Profiler } from 'node:inspector/promises';
import { join } from 'node:path';
import { readSegments } from '../../daemon/audit/reader.js';
import { verifyLogDir } from '../../daemon/auditor/verify-dir.js';
import { AuditFailure, type Summary } from '../../daemon/auditor/report.js';
import { generatedLog, type GeneratedLog } from './audit-log-gen.js';
import type { Benchmark, Outcome } from './report.js';
import { collectGarbage, fmt, msSince, nowNs } from './stats.js';

const RECORDS = 1_000_000;
const TARGET_SECONDS = 10;
const progress = (line: string) => process.stderr.write(`bench: verify: ${line}\n`);

async function segmentFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const seg of readSegments(dir)) names.push(seg.name);
  return names;
}

/** The baseline: each segment file read and hashed once. */
async function sha256Pass(dir: string, names: string[]): Promise<number> {
  collectGarbage();
  const start = nowNs();
  for (const n of names) createHash('sha256').update(await readFile(join(dir, n))).digest();
  return msSince(start) / 1000;
}

/** What `attestctl audit verify` runs, minus its printing. */
function verifyLikeAttestctl(log: GeneratedLog): Promise<Summary> {
  return verifyLogDir(log.dir, log.akPublicKey);
}

/** Where each profile sample is counted: the outermost frame that matches a part, else its leaf. */
const PARTS: { part: string; url: string; names?: string[] }[] = [
  { part: 'lease-token checks', url: 'verify/lease-token.js', names: ['verifyLeaseToken'] },
  { part: 'epochs (quote, binding, re-appraisal)', url: 'auditor/log-verifier.js', names: ['epoch', 'policyLoad'] },
  { part: 'checkpoints (signed notes)', url: 'auditor/log-verifier.js', names: ['checkpoint', 'published'] },
  { part: 'Merkle tree + root window', url: 'verify/merkle/root-window.js' },
  { part: 'record decode', url: 'gen/proto.js' },
  { part: 'framing + CRC32C', url: 'audit/frame.js' },
];

interface Attribution {
  /** Seconds per part, including garbage collection, waiting for reads and the rest. */
  parts: Map<string, number>;
  /** Seconds in crypto.verify (every Ed25519 and ECDSA signature check), whichever part called it. */
  signatureVerify: number;
}

function attribute(profile: Profiler.Profile): Attribution {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const partOf = new Map<number, string>();
  // Native signature work shows as its own frames (SignJob, run) below node's verify function.
  const verifying = new Map<number, boolean>();
  const inVerify = (id: number): boolean => {
    const known = verifying.get(id);
    if (known !== undefined) return known;
    const up = parent.get(id);
    const f = byId.get(id)!.callFrame;
    const v = f.url === 'node:internal/crypto/sig' && f.functionName.startsWith('verify') ? true : up === undefined ? false : inVerify(up);
    verifying.set(id, v);
    return v;
  };
  const part = (id: number): string => {
    const known = partOf.get(id);
    if (known !== undefined) return known;
    const up = parent.get(id);
    const outer = up === undefined ? '' : part(up);
    const f = byId.get(id)!.callFrame;
    const own = PARTS.find((p) => f.url.endsWith(p.url) && (!p.names || p.names.includes(f.functionName)))?.part ?? '';
    const name = outer || own;
    partOf.set(id, name);
    return name;
  };
  const parts = new Map<string, number>();
  let signatureVerify = 0;
  profile.samples?.forEach((id, i) => {
    const seconds = (profile.timeDeltas?.[i] ?? 0) / 1e6;
    const f = byId.get(id)!.callFrame;
    const name = part(id) || (f.functionName === '(garbage collector)' ? 'garbage collection'
      : f.functionName === '(idle)' ? 'waiting for file reads' : 'other (record checks, I/O calls, bookkeeping)');
    parts.set(name, (parts.get(name) ?? 0) + seconds);
    if (inVerify(id)) signatureVerify += seconds;
  });
  return { parts, signatureVerify };
}

async function run(): Promise<Outcome> {
  const log = await generatedLog(RECORDS, progress);
  const names = await segmentFiles(log.dir);
  // Both sides read the files from the page cache, not one of them from the disk.
  for (const n of names) await readFile(join(log.dir, n));
  progress('SHA-256 pass (baseline)');
  const shaBefore = await sha256Pass(log.dir, names);
  progress(`verifying ${log.records.toLocaleString('en-US')} records as attestctl audit verify does`);
  const inspector = new Session();
  inspector.connect();
  await inspector.post('Profiler.enable');
  await inspector.post('Profiler.setSamplingInterval', { interval: 1000 });
  collectGarbage();
  await inspector.post('Profiler.start');
  const start = nowNs();
  let summary: Summary;
  let profile: Profiler.Profile;
  try {
    summary = await verifyLikeAttestctl(log);
  } catch (err) {
    if (err instanceof AuditFailure) {
      throw new Error(`the generated log in ${log.dir} does not verify: record ${err.where.seq}: ${err.check}: ${err.message}`, { cause: err });
    }
    throw err;
  } finally {
    profile = (await inspector.post('Profiler.stop')).profile;
    inspector.disconnect();
  }
  const seconds = msSince(start) / 1000;
  const shaAfter = await sha256Pass(log.dir, names);
  const c = log.counts;
  const expected = { records: log.records, sessions: 1, epochs: c.epochs, passingEpochs: c.epochs, grants: c.grants, renewals: c.renewals,
    denials: c.denials, revocations: 0, checkpoints: c.checkpoints, recoveries: 0 };
  for (const [k, v] of Object.entries(expected)) {
    if (summary[k as keyof Summary] !== v) throw new Error(`verifier counted ${String(summary[k as keyof Summary])} ${k}, the generator wrote ${v}`);
  }

  const sha = (shaBefore + shaAfter) / 2;
  const mb = log.bytes / 1e6;
  const met = seconds <= TARGET_SECONDS;
  const tokens = c.grants + c.renewals;
  // Every signature the verifier checks: tokens, epoch results, quotes, checkpoint notes, the published note.
  const signatures = tokens + 2 * c.epochs + c.checkpoints + 1;
  const { parts, signatureVerify } = attribute(profile);
  const sampled = [...parts.values()].reduce((x, y) => x + y, 0);
  const shares = [...parts].sort((x, y) => y[1] - x[1]).map(([name, t]) => `${name} ${fmt(t)} s (${Math.round((100 * t) / sampled)}%)`);
  const perSignature = signatureVerify / signatures;
  return {
    baseline: 'plain SHA-256 over the same segment files (read + hash each file once; mean of a pass before and after)',
    figures: [
      { metric: `verify ${log.records.toLocaleString('en-US')} records`, unit: 's', value: seconds, baseline: sha, better: 'lower',
        target: { text: `<= ${TARGET_SECONDS} s`, met } },
      { metric: 'records per second', unit: 'rec/s', value: log.records / seconds, baseline: log.records / sha, better: 'higher' },
      { metric: 'throughput', unit: 'MB/s', value: mb / seconds, baseline: mb / sha, better: 'higher' },
    ],
    notes: [
      `log: ${log.records.toLocaleString('en-US')} records, ${fmt(mb)} MB in ${log.segments} segment files written through AuditLog ` +
        `(64 MiB sealed segments + range files); ${fmt(log.logSeconds)} s of log time at 5,000 records/s: 1 session, ` +
        `${c.epochs} epochs (each a P-256 quote over the binding, re-appraised), ${c.checkpoints} signed checkpoints, ` +
        `${c.grants.toLocaleString('en-US')} grants, ${c.renewals.toLocaleString('en-US')} renewals, ${c.releases.toLocaleString('en-US')} releases, ` +
        `${c.denials.toLocaleString('en-US')} denials, ${c.expiries} expiry records`,
      `log cached in ${log.dir}` + (log.generatedSeconds !== undefined ? ` (generated in this run in ${fmt(log.generatedSeconds)} s)` : ' (reused; delete it to regenerate)'),
      `where the time went (CPU profile of the timed run, 1 ms samples, ${fmt(sampled)} s sampled): ${shares.join(', ')}`,
      `crypto.verify took ${fmt(signatureVerify)} s of it (${Math.round((100 * signatureVerify) / sampled)}%): ` +
        `${signatures.toLocaleString('en-US')} signatures, ${fmt(perSignature * 1e6)} us each, ${tokens.toLocaleString('en-US')} of them lease tokens`,
      met ? `target met: ${fmt(seconds)} s <= ${TARGET_SECONDS} s`
        : `target missed by ${fmt(seconds - TARGET_SECONDS)} s (${fmt(seconds / TARGET_SECONDS)}x): the Ed25519 verify of each grant and renewal ` +
          `alone needs ~${fmt(perSignature * tokens)} s on one core, ~${fmt((perSignature * tokens) / 2)} s even if spread over both cores of this machine`,
    ],
    details: { seconds, summary, shaSeconds: [shaBefore, shaAfter], profileSeconds: Object.fromEntries(parts), signatureVerifySeconds: signatureVerify,
      signatures, tokens, bytes: log.bytes, segments: log.segments, counts: c, cacheDir: log.dir, generatedSeconds: log.generatedSeconds },
  };
}

export const auditVerifyBench: Benchmark = { id: 'verify', title: `7. Audit log verification, ${RECORDS.toLocaleString('en-US')} records`, run };
