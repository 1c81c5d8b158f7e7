/**
 * The intent file of `attestctl run --intent` and `attestctl lease acquire --intent`: JSON,
 * docs/attestctl.md ("Execution intent"). Read here, bounded, and turned into the request's
 * Intent; the daemon checks bounds again and resolves it. Relative artifact paths are made
 * absolute against the current directory, since the daemon opens them from its own.
 */
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { attestd } from '../gen/proto.js';
import { AttestdError } from '../base/errors.js';

const MAX_FILE_BYTES = 1024 * 1024;
const KEYS = ['artifacts', 'image_digest', 'job_id', 'labels'];
const ARTIFACT_KEYS = ['path', 'sha256', 'name'];

function bad(file: string, message: string): never {
  throw new AttestdError('INTENT_MALFORMED', `${file}: ${message}`);
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function closed(o: Obj, keys: string[], file: string, where: string): void {
  const extra = Object.keys(o).find((k) => !keys.includes(k));
  if (extra !== undefined) bad(file, `${where}: unknown key "${extra}" (expected ${keys.join(', ')})`);
}

function text(v: unknown, file: string, where: string): string {
  if (v === undefined) return '';
  if (typeof v !== 'string') bad(file, `${where} must be a string`);
  return v;
}

function artifact(a: unknown, i: number, file: string): attestd.lease.v1.IntentArtifact.$Properties {
  if (!isObj(a)) bad(file, `artifacts[${i}] must be an object`);
  closed(a, ARTIFACT_KEYS, file, `artifacts[${i}]`);
  const path = text(a.path, file, `artifacts[${i}].path`);
  const sha = text(a.sha256, file, `artifacts[${i}].sha256`);
  if ((path === '') === (sha === '')) bad(file, `artifacts[${i}] needs exactly one of path and sha256`);
  if (sha !== '' && !/^[0-9a-fA-F]{64}$/.test(sha)) bad(file, `artifacts[${i}].sha256 must be 64 hex characters`);
  const name = text(a.name, file, `artifacts[${i}].name`);
  return { name, ...(path ? { path: resolve(path) } : { sha256: Buffer.from(sha, 'hex') }) };
}

/** The Intent a JSON intent file states. */
export function readIntentFile(file: string): attestd.lease.v1.Intent.$Properties {
  let value: unknown;
  try {
    if (statSync(file).size > MAX_FILE_BYTES) bad(file, `larger than ${MAX_FILE_BYTES} bytes`);
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    if (err instanceof AttestdError) throw err;
    bad(file, (err as Error).message);
  }
  if (!isObj(value)) bad(file, 'expected a JSON object');
  closed(value, KEYS, file, 'intent');
  const artifacts = value.artifacts ?? [];
  if (!Array.isArray(artifacts)) bad(file, 'artifacts must be a list');
  const labels = value.labels ?? {};
  if (!isObj(labels) || Object.values(labels).some((v) => typeof v !== 'string')) bad(file, 'labels must map names to strings');
  return {
    artifacts: artifacts.map((a, i) => artifact(a, i, file)),
    imageDigest: text(value.image_digest, file, 'image_digest'),
    jobId: text(value.job_id, file, 'job_id'),
    labels: labels as Record<string, string>,
  };
}
