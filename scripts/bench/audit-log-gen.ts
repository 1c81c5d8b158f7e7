/**
 * A large audit log as a busy daemon writes it, for the verification benchmark: written
 * through AuditLog (64 MiB sealed segments with their range files, group-committed batches
 * sharing a timestamp), with real signatures throughout: Ed25519 lease tokens, epoch results
 * and checkpoint notes by a session key, and per epoch a TPM quote by a P-256 attestation key
 * made here (restricted signing key, AK template attributes) whose qualifying data is the
 * epoch binding over the log root at that moment and whose PCR digest covers the PCR values
 * the policy (policies/dev.yaml) requires. Token signing runs on two worker threads.
 *
 * The log is cached in os.tmpdir()/attestd-bench-audit-<LOG_VERSION>-<records>-<code hash>
 * and reused while meta.json (written last) is there. The code hash covers the generator, the
 * record encoding and framing, and the policy, so a change to any of them makes a new log;
 * caches under any other name are removed. Delete the folder to force a new log.
 */
import { createHash, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { AuditLog, type AuditBody } from '../../daemon/audit/log.js';
import { CHECKPOINT_FILE } from '../../daemon/audit/segments.js';
import { attestd } from '../../daemon/gen/proto.js';
import type { Signer } from '../../daemon/base/signer.js';
import { requiredSelections } from '../../daemon/policy/appraise.js';
import { parsePolicy } from '../../daemon/policy/parse.js';
import type { LoadedPolicy } from '../../daemon/policy/types.js';
import { akTemplate } from '../../daemon/evidence/tpm/ak-template.js';
import { bindingDigest, EMPTY_GPU_MEASUREMENT_SHA256 } from '../../daemon/verify/binding.js';
import { formatCheckpoint } from '../../daemon/verify/checkpoint.js';
import { EPOCH_RESULT_CONTEXT } from '../../daemon/verify/epoch-result.js';
import { encodePcrSelection, pcrDigest, type PcrBank, type PcrSelection } from '../../daemon/verify/pcr.js';
import { signNote } from '../../daemon/verify/signed-note.js';
import { TPM_ALG } from '../../daemon/verify/tpm-alg.js';
import { TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE } from '../../daemon/verify/tpm-attest.js';
import { parseTpmtPublic } from '../../daemon/verify/tpm-public.js';
import { TpmWriter } from '../../daemon/verify/tpm-reader.js';
import { LogPlan, type Chunk, type PlanCounts, type Slot } from './audit-log-plan.js';
import type { TokenJob, TokenResult, TokenSetup } from './audit-log-worker.js';
import { ROOT } from './processes.js';
import { msSince, nowNs } from './stats.js';

/** Names what the generator writes; a cache of another version is stale. */
export const LOG_VERSION = 'v1';
const CACHE_PREFIX = 'attestd-bench-audit-';
const META = 'meta.json';
const WORKERS = 2;
const JOBS_AHEAD = 4;
const Kind = attestd.audit.v1.LeaseDecision.Kind;

export interface GeneratedLog {
  dir: string;
  records: number;
  bytes: number;
  segments: number;
  akPublicKey: KeyObject;
  counts: PlanCounts;
  logSeconds: number;
  /** How long generation took, when it did; undefined for a cached log. */
  generatedSeconds?: number;
}

interface Meta {
  version: string;
  records: number;
  akPublicPem: string;
  counts: PlanCounts;
  logSeconds: number;
}

/** The cached log, or a new one. Progress goes to `progress`. */
export async function generatedLog(records: number, progress: (line: string) => void): Promise<GeneratedLog> {
  const name = `${CACHE_PREFIX}${LOG_VERSION}-${records}-${codeHash()}`;
  for (const entry of await readdir(tmpdir())) {
    if (entry.startsWith(CACHE_PREFIX) && entry !== name) {
      progress(`removing stale audit-log cache ${join(tmpdir(), entry)}`);
      await rm(join(tmpdir(), entry), { recursive: true, force: true });
    }
  }
  const dir = join(tmpdir(), name);
  // No meta.json, or a torn one: the generation did not finish.
  const meta = await readFile(join(dir, META), 'utf8').then((t) => JSON.parse(t) as Meta).catch(() => undefined);
  if (meta && meta.version === LOG_VERSION && meta.records === records) return describe(dir, meta);
  await rm(dir, { recursive: true, force: true });
  progress(`generating a ${records.toLocaleString('en-US')}-record audit log in ${dir} (once; cached for later runs)`);
  const start = nowNs();
  const made = await generate(dir, records, progress);
  await writeFile(join(dir, META), JSON.stringify(made));
  return { ...(await describe(dir, made)), generatedSeconds: msSince(start) / 1000 };
}

/** What the log's bytes depend on besides chance: this generator, the encoders, the policy. */
function codeHash(): string {
  const h = createHash('sha256');
  for (const f of ['./audit-log-gen.js', './audit-log-plan.js', './audit-log-worker.js', '../../daemon/gen/proto.js',
    '../../daemon/audit/log.js', '../../daemon/audit/frame.js', '../../daemon/lease/token.js']) {
    h.update(readFileSync(new URL(f, import.meta.url)));
  }
  h.update(readFileSync(join(ROOT, 'policies', 'dev.yaml')));
  return h.digest('hex').slice(0, 12);
}

async function describe(dir: string, meta: Meta): Promise<GeneratedLog> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.seg') || n.endsWith('.open'));
  let bytes = 0;
  for (const n of names) bytes += (await stat(join(dir, n))).size;
  return { dir, records: meta.records, bytes, segments: names.length, akPublicKey: createPublicKey(meta.akPublicPem),
    counts: meta.counts, logSeconds: meta.logSeconds };
}

/** Workloads the leases go to: 64 training processes of one user. */
function workloads(): attestd.lease.v1.WorkloadIdentity.$Properties[] {
  return Array.from({ length: 64 }, (_, i) => ({
    pid: 41_000 + i * 17, uid: 1000, gid: 1000, startTime: 9_120_000 + i * 311, exePath: '/usr/bin/python3.11',
    exeSha256: createHash('sha256').update('python3.11').digest(), cgroup: `/system.slice/gpu-job-${i}.scope`,
  }));
}

/** The synthetic TPM: an AK with the daemon's template and quotes over all-zero PCRs. */
class SyntheticTpm {
  readonly publicArea: Buffer;
  private readonly name: Buffer;
  private readonly key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  private readonly selections: PcrSelection[];
  private readonly banks: PcrBank[];

  constructor(policy: LoadedPolicy, private readonly bootMs: number) {
    const jwk = this.key.publicKey.export({ format: 'jwk' });
    const template = akTemplate();
    // The TPM fills the template's empty unique field with the public point.
    this.publicArea = Buffer.concat([template.subarray(0, template.length - 4),
      new TpmWriter().tpm2b(Buffer.from(jwk.x!, 'base64url')).tpm2b(Buffer.from(jwk.y!, 'base64url')).finish()]);
    this.name = parseTpmtPublic(this.publicArea).name;
    this.selections = requiredSelections(policy.policy);
    this.banks = this.selections.map((s) => ({ alg: s.alg, values: new Map(s.pcrs.map((i) => [i, Buffer.alloc(32)])) }));
  }

  get publicPem(): string {
    return this.key.publicKey.export({ type: 'spki', format: 'pem' }) as string;
  }

  quote(qualifyingData: Buffer, atMs: number): attestd.audit.v1.TpmEvidence.$Properties {
    const attest = new TpmWriter().u32(TPM_GENERATED_VALUE).u16(TPM_ST_ATTEST_QUOTE).tpm2b(this.name).tpm2b(qualifyingData)
      .u64(BigInt(atMs - this.bootMs)).u32(1).u32(0).u8(1).u64(0x2023_0717_0000_0000n)
      .bytes(encodePcrSelection(this.selections)).tpm2b(pcrDigest(this.selections, this.banks, 'sha256')).finish();
    const rs = sign('sha256', attest, { key: this.key.privateKey, dsaEncoding: 'ieee-p1363' });
    const signature = new TpmWriter().u16(TPM_ALG.ECDSA).u16(TPM_ALG.SHA256).tpm2b(rs.subarray(0, 32)).tpm2b(rs.subarray(32)).finish();
    return { attest, signature, akPublic: this.publicArea,
      banks: this.banks.map((b) => ({ alg: b.alg, values: [...b.values].map(([index, value]) => ({ index, value })) })) };
  }
}

/** Two workers signing token jobs; results come back in job order per worker. */
class SigningPool {
  private readonly workers: Worker[];
  private readonly waiting = new Map<number, { done: (r: TokenResult) => void; fail: (err: Error) => void }>();
  private nextId = 0;

  constructor(setup: TokenSetup) {
    this.workers = Array.from({ length: WORKERS }, () => {
      const w = new Worker(new URL('./audit-log-worker.js', import.meta.url), { workerData: setup });
      w.on('message', (r: TokenResult) => this.waiting.get(r.id)?.done(r));
      w.on('error', (err) => {
        for (const job of this.waiting.values()) job.fail(err);
        this.waiting.clear();
      });
      return w;
    });
  }

  sign(chunk: Chunk): Promise<void> {
    const id = this.nextId++;
    const c = chunk.claims;
    const job: TokenJob = { id, count: c.leaseIds.length, leaseIds: c.leaseIds, epochs: Float64Array.from(c.epochs),
      workloads: Uint32Array.from(c.workloads), issuedAtMs: Float64Array.from(c.issuedAtMs),
      expiresAtMs: Float64Array.from(c.expiresAtMs), renewals: Uint32Array.from(c.renewals) };
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { fail: reject, done: (r) => {
        this.waiting.delete(id);
        let at = 0;
        chunk.refs.forEach((ref, i) => {
          ref.token = r.bytes.subarray(at, at + r.tokenLengths[i]!);
          at += r.tokenLengths[i]!;
          ref.signature = r.bytes.subarray(at, at + 64);
          at += 64;
        });
        resolve();
      } });
      this.workers[id % WORKERS]!.postMessage(job);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

async function generate(dir: string, records: number, progress: (line: string) => void): Promise<Meta> {
  const policyText = readFileSync(join(ROOT, 'policies', 'dev.yaml'), 'utf8');
  const policy = parsePolicy(policyText, '/etc/attestd/policy.yaml');
  const rule = policy.policy.rules[0]!;
  const startMs = Date.now();
  const tpm = new SyntheticTpm(policy, startMs - 3_600_000);
  const session = generateKeyPairSync('ed25519');
  const sessionPublicKey = Buffer.from(session.publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const signer: Signer = { sign: (d) => sign(null, d, session.privateKey), publicKey: () => sessionPublicKey };
  const origin = `${hostname().replace(/[^A-Za-z0-9.-]/g, '_') || 'localhost'}/attestd`;
  const people = workloads();
  const denied = { ...people[0]!, uid: 1001, gid: 1001, cgroup: '/user.slice/user-1001.slice/session-4.scope' };
  const plan = new LogPlan(records, startMs, { intervalMs: policy.policy.intervalMs, maxAgeMs: policy.policy.maxAgeMs, ttlMs: rule.ttlMs, workloads: people.length });
  const pool = new SigningPool({ privateKey: session.privateKey.export({ format: 'der', type: 'pkcs8' }), publicKey: sessionPublicKey,
    rule: rule.name, scopes: rule.scopes, policySha256: policy.digest, workloads: people });
  const log = await AuditLog.open({ dir, now: () => plan.timeAt(log.size) });
  let lastNote = '';
  let reported = 0;
  const started = nowNs();

  /** The body of one planned record; roots are the log's own, read at the batch start. */
  const body = (slot: Slot): AuditBody => {
    switch (slot.kind) {
      case 'sessionStart':
        return { sessionStart: { sessionPublicKey, akPublic: tpm.publicArea, akPublicPem: tpm.publicPem, tcti: 'device:/dev/tpmrm0', version: '0.1.0', pid: 2417 } };
      case 'policyLoad':
        return { policyLoad: { file: policy.file, sha256: policy.digest, text: Buffer.from(policy.text), valid: true } };
      case 'checkpoint':
        lastNote = signNote(formatCheckpoint({ origin, size: log.size, root: log.root(), extensions: [] }), origin, signer);
        return { checkpoint: { note: lastNote } };
      case 'epoch': {
        const e = slot.epoch;
        const logRoot = log.root();
        const binding = bindingDigest({ sessionPublicKey, epoch: e.epoch, gpuMeasurementSha256: EMPTY_GPU_MEASUREMENT_SHA256, logRoot });
        const result = attestd.audit.v1.EpochResult.encode({
          epoch: e.epoch, pass: true, reasons: [], appraisedAtMs: e.appraisedAtMs, validUntilMs: e.validUntilMs, policySha256: policy.digest,
          sessionPublicKey, binding, logSize: log.size, logRoot, gpuMeasurementSha256: EMPTY_GPU_MEASUREMENT_SHA256,
          tpm: tpm.quote(binding, e.appraisedAtMs),
        }).finish();
        return { epoch: { result, signature: signer.sign(Buffer.concat([EPOCH_RESULT_CONTEXT, result])) } };
      }
      case 'deny':
        return { leaseDecision: { kind: Kind.DENY, leaseId: '', epoch: slot.epoch, workload: denied, reasonCode: 'NO_MATCHING_RULE',
          reason: 'no policy rule matches this workload' } };
      case 'expire':
        return { leaseDecision: { kind: Kind.EXPIRE, epoch: slot.epoch, count: slot.leaseIds.length, leaseIds: slot.leaseIds } };
      case 'lease':
        if (!slot.ref.token || !slot.ref.signature) throw new Error(`token of lease ${slot.leaseId} was not signed`);
        return { leaseDecision: { kind: slot.decision, leaseId: slot.leaseId, epoch: slot.epoch, rule: rule.name, workload: people[slot.workload],
          token: { token: slot.ref.token, signature: slot.ref.signature }, expiresAtMs: slot.expiresAtMs } };
    }
  };

  try {
    const ahead: { chunk: Chunk; signed: Promise<void> }[] = [];
    const refill = () => {
      while (ahead.length < JOBS_AHEAD) {
        const chunk = plan.nextChunk();
        if (!chunk) return;
        ahead.push({ chunk, signed: pool.sign(chunk) });
      }
    };
    refill();
    while (ahead.length > 0) {
      const { chunk, signed } = ahead.shift()!;
      await signed;
      refill();
      for (const batch of chunk.batches) {
        // Each batch is one durable group commit: its records share the time read at its start.
        if (log.size !== batch.start) throw new Error(`log at ${log.size} records, batch planned at ${batch.start}`);
        const seqs = await Promise.all(batch.slots.map((s) => log.append(body(s))));
        if (seqs.some((s, i) => s !== batch.start + i)) throw new Error(`batch at ${batch.start} was not written as one run`);
      }
      if (log.size - reported >= records / 10 || log.size === records) {
        reported = log.size;
        progress(`  ${log.size.toLocaleString('en-US')} records (${Math.round((100 * log.size) / records)}%), ${(msSince(started) / 1000).toFixed(0)} s`);
      }
    }
  } finally {
    await log.close();
    await pool.close();
  }
  await writeFile(join(dir, CHECKPOINT_FILE), lastNote);
  return { version: LOG_VERSION, records, akPublicPem: tpm.publicPem, counts: plan.counts, logSeconds: (plan.timeAt(records) - startMs) / 1000 };
}
