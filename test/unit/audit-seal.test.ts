/**
 * Sealing segments is resumable from every intermediate state, a seal stopped after the
 * segment got its sealed name stops appends instead of writing into it, a range file is
 * checked against its segment, and a zero-filled tail is a torn tail.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog } from '../../daemon/audit/log.js';
import { readSegments, framesOf } from '../../daemon/audit/reader.js';
import type { SealStep } from '../../daemon/audit/seal.js';
import { attestd } from '../../daemon/gen/proto.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'attestd-seal-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const body = (n: number) => ({ leaseDecision: { kind: 1, leaseId: n.toString(16).padStart(32, '0') } });
const names = (suffix: string) => readdirSync(dir).filter((n) => n.endsWith(suffix)).sort();

async function seqs(): Promise<number[]> {
  const out: number[] = [];
  for await (const seg of readSegments(dir)) {
    for (const f of framesOf(seg)) {
      expect(f).toHaveProperty('payload');
      if ('payload' in f) out.push(attestd.audit.v1.AuditRecord.decode(f.payload).seq);
    }
  }
  return out;
}

const STEPS: SealStep[] = ['range', 'link', 'unlink', 'chmod', 'next'];
const AFTER_LINK = new Set<SealStep>(['unlink', 'chmod', 'next']);

describe('sealing segments', () => {
  for (const failing of STEPS) {
    it(`a seal that fails at "${failing}" ${AFTER_LINK.has(failing) ? 'stops appends' : 'lets appends go on'}, and the log resumes it on reopen`, async () => {
      let broken = true;
      const log = await AuditLog.open({ dir, segmentBytes: 200, beforeSealStep: (step) => {
        if (broken && step === failing) throw new Error(`injected failure at ${step}`);
      }, onWriteError: () => undefined });
      let acknowledged = 0;
      // Enough records to fill the first segment; the seal after the batch that fills it fails
      // and runs before the next append is written.
      for (let i = 0; i < 4; i++) acknowledged = (await log.append(body(i))) + 1;
      if (AFTER_LINK.has(failing)) {
        await expect(log.append(body(98))).rejects.toMatchObject({ code: 'AUDIT_WRITE_FAILED' });
        const sealed = join(dir, names('.seg')[0]!);
        const before = statSync(sealed).size;
        await expect(log.append(body(99))).rejects.toMatchObject({ code: 'AUDIT_WRITE_FAILED' });
        // Nothing was written into the file that already has its sealed name.
        expect(statSync(sealed).size).toBe(before);
      } else {
        acknowledged = (await log.append(body(4))) + 1;
        expect(names('.seg')).toEqual([]);
        expect(statSync(join(dir, names('.open')[0]!)).size).toBeGreaterThan(200);
      }
      // A crash here: the process goes, leaving the folder as it is.
      broken = true;
      await log.close();
      const reopened = await AuditLog.open({ dir, segmentBytes: 200 });
      expect(reopened.size).toBe(acknowledged);
      for (let i = 0; i < 6; i++) await reopened.append(body(100 + i));
      await reopened.close();
      expect(await seqs()).toEqual([...Array(acknowledged + 6).keys()]);
      expect(names('.open')).toHaveLength(1);
      for (const s of names('.seg')) {
        expect(statSync(join(dir, s)).mode & 0o777).toBe(0o440);
        const range = JSON.parse(readFileSync(join(dir, s.replace('.seg', '.range')), 'utf8')) as { records: number; bytes: number };
        expect(range.bytes).toBe(statSync(join(dir, s)).size);
      }
      // Every range file belongs to a sealed segment.
      expect(names('.range').map((n) => n.replace('.range', ''))).toEqual(names('.seg').map((n) => n.replace('.seg', '')));
    });
  }

  it('finishes the seal in the same process once the step works again', async () => {
    let broken = true;
    const log = await AuditLog.open({ dir, segmentBytes: 200, beforeSealStep: (step) => {
      if (broken && step === 'chmod') throw new Error('injected');
    }, onWriteError: () => undefined });
    for (let i = 0; i < 4; i++) await log.append(body(i));
    await expect(log.append(body(4))).rejects.toMatchObject({ code: 'AUDIT_WRITE_FAILED' });
    await expect(log.append(body(4))).rejects.toMatchObject({ code: 'AUDIT_WRITE_FAILED' });
    broken = false;
    expect(await log.append(body(4))).toBe(4);
    await log.close();
    expect(await seqs()).toEqual([0, 1, 2, 3, 4]);
    expect(names('.seg')).toHaveLength(1);
  });

  it('re-hashes sealed segments when a range file does not describe its segment', async () => {
    const log = await AuditLog.open({ dir, segmentBytes: 200 });
    for (let i = 0; i < 8; i++) await log.append(body(i));
    const root = log.root();
    await log.close();
    const seg = names('.seg').at(-1)!;
    const rangePath = join(dir, seg.replace('.seg', '.range'));
    const range = JSON.parse(readFileSync(rangePath, 'utf8')) as Record<string, unknown>;
    // A damaged byte in a sealed segment goes unnoticed while its range file matches it ...
    const segPath = join(dir, seg);
    const bytes = readFileSync(segPath);
    bytes[20] = bytes[20]! ^ 0xff;
    writeFileSync(segPath, bytes);
    const trusted = await AuditLog.open({ dir, segmentBytes: 200 });
    expect(trusted.root().equals(root)).toBe(true);
    await trusted.close();
    // ... but a range that names another length makes the log re-hash, which finds the damage.
    writeFileSync(rangePath, JSON.stringify({ ...range, bytes: (range.bytes as number) + 1 }));
    await expect(AuditLog.open({ dir, segmentBytes: 200 })).rejects.toMatchObject({ code: 'AUDIT_CORRUPT' });
  });
});

describe('torn tails', () => {
  it('recovers a zero-filled tail as a torn tail, and records the recovery', async () => {
    const log = await AuditLog.open({ dir });
    await log.append(body(1));
    await log.append(body(2));
    await log.close();
    const open = join(dir, names('.open')[0]!);
    const whole = statSync(open).size;
    appendFileSync(open, Buffer.alloc(4096));
    const reopened = await AuditLog.open({ dir });
    expect(reopened.size).toBe(3);
    await reopened.close();
    const recs: attestd.audit.v1.AuditRecord[] = [];
    for await (const seg of readSegments(dir)) for (const f of framesOf(seg)) if ('payload' in f) recs.push(attestd.audit.v1.AuditRecord.decode(f.payload));
    expect(recs[2]!.logRecovery).toMatchObject({ truncatedAtOffset: whole, droppedBytes: 4096, recordsKept: 2 });
  });

  it('still refuses zeros followed by data: that is damage, not a torn tail', async () => {
    const log = await AuditLog.open({ dir });
    await log.append(body(1));
    await log.close();
    appendFileSync(join(dir, names('.open')[0]!), Buffer.concat([Buffer.alloc(16), Buffer.from([1])]));
    await expect(AuditLog.open({ dir })).rejects.toMatchObject({ code: 'AUDIT_CORRUPT' });
  });
});
