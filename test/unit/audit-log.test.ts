import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, appendFileSync, rmSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog } from '../../daemon/audit/log.js';
import { encodeFrame } from '../../daemon/audit/frame.js';
import { CompactRange } from '../../daemon/verify/merkle/tree.js';
import { readSegments, framesOf } from '../../daemon/audit/reader.js';
import { attestd } from '../../daemon/gen/proto.js';
import { canMount, mountSmallFs } from '../helpers/tmpfs.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'attestd-audit-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function records(d: string): Promise<attestd.audit.v1.AuditRecord[]> {
  const out: attestd.audit.v1.AuditRecord[] = [];
  for await (const seg of readSegments(d)) {
    for (const f of framesOf(seg)) if ('payload' in f) out.push(attestd.audit.v1.AuditRecord.decode(f.payload));
  }
  return out;
}

const openSegment = (d: string) => join(d, readdirSync(d).find((n) => n.endsWith('.open'))!);
const body = (n: number) => ({ leaseDecision: { kind: 1, leaseId: n.toString(16).padStart(32, '0') } });

describe('audit log', () => {
  it('appends durable records with consecutive seq and keeps the Merkle root across reopen', async () => {
    const log = await AuditLog.open({ dir });
    const seqs = await Promise.all([0, 1, 2, 3, 4].map((n) => log.append(body(n))));
    expect(seqs).toEqual([0, 1, 2, 3, 4]);
    const root = log.root();
    await log.close();
    const recs = await records(dir);
    expect(recs.map((r) => r.seq)).toEqual([0, 1, 2, 3, 4]);
    expect(recs[3]!.leaseDecision!.leaseId).toBe('3'.padStart(32, '0'));
    const again = await AuditLog.open({ dir });
    expect(again.size).toBe(5);
    expect(again.root().equals(root)).toBe(true);
    expect(await again.append(body(5))).toBe(5);
    await again.close();
  });

  it('the root covers the payloads as RFC 6962 leaves', async () => {
    const log = await AuditLog.open({ dir });
    await log.append(body(1));
    await log.append(body(2));
    const range = new CompactRange();
    for await (const seg of readSegments(dir)) for (const f of framesOf(seg)) if ('payload' in f) range.append(f.payload);
    expect(range.root().equals(log.root())).toBe(true);
    await log.close();
  });

  it('seals full segments read-only with their compact range, and restarts without re-reading them', async () => {
    const log = await AuditLog.open({ dir, segmentBytes: 300 });
    for (let i = 0; i < 40; i++) await log.append(body(i));
    const root = log.root();
    await log.close();
    const names = readdirSync(dir).sort();
    const sealed = names.filter((n) => n.endsWith('.seg'));
    expect(sealed.length).toBeGreaterThan(3);
    expect(names.filter((n) => n.endsWith('.open'))).toHaveLength(1);
    for (const s of sealed) {
      expect(statSync(join(dir, s)).mode & 0o777).toBe(0o440);
      expect(names).toContain(s.replace('.seg', '.range'));
    }
    expect((await records(dir)).map((r) => r.seq)).toEqual([...Array(40).keys()]);
    // Sealed segments are not re-read at start (the offline verifier checks them) ...
    const first = join(dir, sealed[0]!);
    const bytes = readFileSync(first);
    bytes[20] = bytes[20]! ^ 0xff;
    writeFileSync(first, bytes);
    const reopened = await AuditLog.open({ dir, segmentBytes: 300 });
    expect(reopened.size).toBe(40);
    expect(reopened.root().equals(root)).toBe(true);
    await reopened.close();
    // ... and without range files the sealed segments are re-hashed, which finds the damage.
    for (const n of names.filter((x) => x.endsWith('.range'))) unlinkSync(join(dir, n));
    await expect(AuditLog.open({ dir, segmentBytes: 300 })).rejects.toMatchObject({ code: 'AUDIT_CORRUPT' });
    bytes[20] = bytes[20]! ^ 0xff;
    writeFileSync(first, bytes);
    const rehashed = await AuditLog.open({ dir, segmentBytes: 300 });
    expect(rehashed.root().equals(root)).toBe(true);
    await rehashed.close();
  });

  it('recovers from a crash between linking a sealed segment and removing its open name', async () => {
    const log = await AuditLog.open({ dir, segmentBytes: 200 });
    for (let i = 0; i < 10; i++) await log.append(body(i));
    await log.close();
    const sealed = readdirSync(dir).filter((n) => n.endsWith('.seg')).sort();
    const last = sealed.at(-1)!;
    // Recreate the state right after link(): the open name still exists beside the sealed one.
    writeFileSync(join(dir, last.replace('.seg', '.open')), readFileSync(join(dir, last)));
    const reopened = await AuditLog.open({ dir, segmentBytes: 200 });
    expect(reopened.size).toBe(10);
    await reopened.close();
  });

  it('truncates a torn tail and records the truncation', async () => {
    const log = await AuditLog.open({ dir });
    await log.append(body(1));
    await log.append(body(2));
    await log.close();
    const path = openSegment(dir);
    const whole = readFileSync(path).length;
    appendFileSync(path, Buffer.from([0, 0, 0, 50, 1, 2, 3, 4, 9, 9])); // a record cut short by a crash
    const reopened = await AuditLog.open({ dir });
    expect(reopened.size).toBe(3);
    await reopened.close();
    const recs = await records(dir);
    expect(recs).toHaveLength(3);
    expect(recs[2]!.logRecovery).toMatchObject({ truncatedAtOffset: whole, droppedBytes: 10, recordsKept: 2 });
  });

  it('refuses to open a log damaged before its end instead of dropping acknowledged records', async () => {
    const log = await AuditLog.open({ dir });
    await log.append(body(1));
    await log.append(body(2));
    await log.close();
    const path = openSegment(dir);
    const data = readFileSync(path);
    data[12] = data[12]! ^ 0xff; // inside the first record's payload
    writeFileSync(path, data);
    await expect(AuditLog.open({ dir })).rejects.toMatchObject({ code: 'AUDIT_CORRUPT' });
    expect(readFileSync(path).equals(data)).toBe(true);
  });

  it('refuses a sequence gap', async () => {
    const log = await AuditLog.open({ dir });
    await log.append(body(1));
    await log.close();
    appendFileSync(openSegment(dir), encodeFrame(attestd.audit.v1.AuditRecord.encode({ seq: 7, timeMs: 1 }).finish()));
    await expect(AuditLog.open({ dir })).rejects.toMatchObject({ code: 'AUDIT_CORRUPT' });
  });

  it('refuses two open segments', async () => {
    const log = await AuditLog.open({ dir });
    await log.append(body(1));
    await log.close();
    writeFileSync(join(dir, '00000000000000000009.open'), '');
    await expect(AuditLog.open({ dir })).rejects.toMatchObject({ code: 'AUDIT_CORRUPT' });
  });

  it.skipIf(!canMount())('fails appends with AUDIT_WRITE_FAILED on a full disk, leaves no partial record, and recovers when space returns', async () => {
    const fs = mountSmallFs(256);
    try {
      const log = await AuditLog.open({ dir: join(fs.dir, 'audit') });
      await log.append(body(1));
      fs.fill();
      const big = { policyLoad: { file: 'x', text: Buffer.alloc(64 * 1024, 1) } };
      await expect(log.append(big)).rejects.toMatchObject({ code: 'AUDIT_WRITE_FAILED' });
      expect(log.size).toBe(1);
      fs.free();
      expect(await log.append(body(2))).toBe(1);
      await log.close();
      expect((await records(join(fs.dir, 'audit'))).map((r) => r.seq)).toEqual([0, 1]);
    } finally {
      fs.unmount();
    }
  });
});
