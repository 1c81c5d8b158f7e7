import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, appendFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog } from '../../daemon/audit/log.js';
import { readFrame } from '../../daemon/audit/frame.js';
import { CompactRange } from '../../daemon/audit/merkle.js';
import { attestd } from '../../daemon/gen/proto.js';
import { canMount, mountSmallFs } from '../helpers/tmpfs.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'attestd-audit-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function records(path: string): attestd.audit.v1.AuditRecord[] {
  const data = readFileSync(path);
  const out: attestd.audit.v1.AuditRecord[] = [];
  for (let off = 0; ;) {
    const f = readFrame(data, off);
    if (f.kind !== 'record') break;
    out.push(attestd.audit.v1.AuditRecord.decode(f.payload));
    off = f.next;
  }
  return out;
}

const body = (n: number) => ({ leaseDecision: { kind: 1, leaseId: n.toString(16).padStart(32, '0') } });

describe('audit log', () => {
  it('appends durable records with consecutive seq and keeps the Merkle root across reopen', async () => {
    const path = join(dir, 'audit.log');
    const log = await AuditLog.open({ path });
    const seqs = await Promise.all([0, 1, 2, 3, 4].map((n) => log.append(body(n))));
    expect(seqs).toEqual([0, 1, 2, 3, 4]);
    const root = log.root();
    await log.close();
    const recs = records(path);
    expect(recs.map((r) => r.seq)).toEqual([0, 1, 2, 3, 4]);
    expect(recs[3]!.leaseDecision!.leaseId).toBe('3'.padStart(32, '0'));
    const again = await AuditLog.open({ path });
    expect(again.size).toBe(5);
    expect(again.root().equals(root)).toBe(true);
    expect(await again.append(body(5))).toBe(5);
    await again.close();
  });

  it('the root covers the payloads as RFC 6962 leaves', async () => {
    const path = join(dir, 'audit.log');
    const log = await AuditLog.open({ path });
    await log.append(body(1));
    await log.append(body(2));
    const data = readFileSync(path);
    const range = new CompactRange();
    for (let off = 0; ;) {
      const f = readFrame(data, off);
      if (f.kind !== 'record') break;
      range.append(f.payload);
      off = f.next;
    }
    expect(range.root().equals(log.root())).toBe(true);
    await log.close();
  });

  it('truncates a torn tail and records the truncation', async () => {
    const path = join(dir, 'audit.log');
    const log = await AuditLog.open({ path });
    await log.append(body(1));
    await log.append(body(2));
    await log.close();
    const whole = readFileSync(path).length;
    appendFileSync(path, Buffer.from([0, 0, 0, 50, 1, 2, 3, 4, 9, 9])); // a record cut short by a crash
    const reopened = await AuditLog.open({ path });
    expect(reopened.size).toBe(3);
    await reopened.close();
    const recs = records(path);
    expect(recs).toHaveLength(3);
    expect(recs[2]!.logRecovery).toMatchObject({ truncatedAtOffset: whole, droppedBytes: 10, recordsKept: 2 });
  });

  it('refuses to open a log damaged before its end instead of dropping acknowledged records', async () => {
    const path = join(dir, 'audit.log');
    const log = await AuditLog.open({ path });
    await log.append(body(1));
    await log.append(body(2));
    await log.close();
    const data = readFileSync(path);
    data[12] = data[12]! ^ 0xff; // inside the first record's payload
    writeFileSync(path, data);
    await expect(AuditLog.open({ path })).rejects.toMatchObject({ code: 'AUDIT_CORRUPT' });
    expect(readFileSync(path).equals(data)).toBe(true);
  });

  it('refuses a sequence gap', async () => {
    const path = join(dir, 'audit.log');
    const log = await AuditLog.open({ path });
    await log.append(body(1));
    await log.close();
    const { encodeFrame } = await import('../../daemon/audit/frame.js');
    appendFileSync(path, encodeFrame(attestd.audit.v1.AuditRecord.encode({ seq: 7, timeMs: 1 }).finish()));
    await expect(AuditLog.open({ path })).rejects.toMatchObject({ code: 'AUDIT_CORRUPT' });
  });

  it('refuses a path that is not a regular file', async () => {
    await expect(AuditLog.open({ path: '/dev/null' })).rejects.toMatchObject({ code: 'AUDIT_WRITE_FAILED' });
  });

  it.skipIf(!canMount())('fails appends with AUDIT_WRITE_FAILED on a full disk, leaves no partial record, and recovers when space returns', async () => {
    const fs = mountSmallFs(256);
    try {
      const path = join(fs.dir, 'audit.log');
      const log = await AuditLog.open({ path });
      await log.append(body(1));
      fs.fill();
      const big = { policyLoad: { file: 'x', text: Buffer.alloc(64 * 1024, 1) } };
      await expect(log.append(big)).rejects.toMatchObject({ code: 'AUDIT_WRITE_FAILED' });
      expect(log.size).toBe(1);
      fs.free();
      expect(await log.append(body(2))).toBe(1);
      await log.close();
      expect(records(path).map((r) => r.seq)).toEqual([0, 1]);
    } finally {
      fs.unmount();
    }
  });
});
