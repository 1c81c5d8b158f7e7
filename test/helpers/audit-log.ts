/** Helpers to read, change and re-frame audit logs for tamper tests. */
import { mkdtemp, readdir, writeFile, cp } from 'node:fs/promises';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { framesOf, readSegments } from '../../daemon/audit/reader.js';
import { encodeFrame } from '../../daemon/audit/frame.js';
import { verifyLogDir } from '../../daemon/auditor/verify-dir.js';
import { AuditFailure, type Summary } from '../../daemon/auditor/report.js';
import { CHECKPOINT_FILE } from '../../daemon/audit/segments.js';
import { attestd } from '../../daemon/gen/proto.js';

export type Records = attestd.audit.v1.AuditRecord[];

/** All payloads of a log folder, in order. */
export async function payloads(dir: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const seg of readSegments(dir)) for (const f of framesOf(seg)) if ('payload' in f) out.push(f.payload);
  return out;
}

/** Writes payloads as one open segment (plus the published checkpoint, if given) into a new folder. */
export async function writeLog(payloadList: Uint8Array[], checkpoint?: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'attestd-tamper-'));
  await writeFile(join(dir, '00000000000000000000.open'), Buffer.concat(payloadList.map((p) => encodeFrame(p))));
  if (checkpoint !== undefined) await writeFile(join(dir, CHECKPOINT_FILE), checkpoint);
  return dir;
}

export async function copyLog(dir: string): Promise<string> {
  const dest = await mkdtemp(join(tmpdir(), 'attestd-copy-'));
  await cp(dir, dest, { recursive: true });
  return dest;
}

export async function openSegmentPath(dir: string): Promise<string> {
  return join(dir, (await readdir(dir)).find((n) => n.endsWith('.open'))!);
}

export function decode(p: Uint8Array): attestd.audit.v1.AuditRecord {
  return attestd.audit.v1.AuditRecord.decode(p);
}

export function encode(r: attestd.audit.v1.AuditRecord.$Properties): Uint8Array {
  return attestd.audit.v1.AuditRecord.encode(r).finish();
}

export type VerifyResult = { ok: true; summary: Summary } | { ok: false; failure: AuditFailure };

/** Runs the verifier over a folder the way `attestctl audit verify` does. */
export async function verifyDir(dir: string, ak: KeyObject): Promise<VerifyResult> {
  try {
    return { ok: true, summary: await verifyLogDir(dir, ak) };
  } catch (err) {
    if (err instanceof AuditFailure) return { ok: false, failure: err };
    throw err;
  }
}

export function akKey(pem: string): KeyObject {
  return createPublicKey(pem);
}

/**
 * A copy of the log in `logDir` with the GRANT record of `leaseId` changed by `mutate` and
 * re-framed with valid CRCs, as an attacker who can write the files would; and its index.
 */
export async function withAlteredGrant(logDir: string, leaseId: string,
  mutate: (d: attestd.audit.v1.ILeaseDecision) => void | Promise<void>): Promise<{ dir: string; idx: number }> {
  const list = await payloads(logDir);
  const idx = list.findIndex((p) => decode(p).leaseDecision?.leaseId === leaseId && decode(p).leaseDecision?.kind === 1);
  const rec = decode(list[idx]!);
  await mutate(rec.leaseDecision!);
  const changed = [...list];
  changed[idx] = Buffer.from(encode(rec));
  return { dir: await writeLog(changed), idx };
}
