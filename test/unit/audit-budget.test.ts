/**
 * The audit log's disk budget: measured at open and after every durable batch, LOG_NEARLY_FULL
 * at 90%, LOG_FULL at the budget, and never more than the filesystem can take less a reserve.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog } from '../../daemon/audit/log.js';
import { AuditBudget, type FsSpace, type LogUsage } from '../../daemon/audit/budget.js';
import { auditBudgetBytes } from '../../daemon/config/daemon-config.js';
import { canMount, mountSmallFs } from '../helpers/tmpfs.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'attestd-budget-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const GiB = 1024 ** 3;
const roomy = async (): Promise<FsSpace> => ({ bavail: GiB / 4096, bsize: 4096, blocks: 4 * GiB / 4096 });
const policyLoad = (n: number) => ({ policyLoad: { file: 'p', text: Buffer.alloc(n, 1) } });

describe('audit log budget', () => {
  it('goes OK, LOG_NEARLY_FULL at 90%, LOG_FULL at the budget, telling each change once', async () => {
    const log = await AuditLog.open({ dir });
    const told: LogUsage[] = [];
    const budget = await AuditBudget.open({ dir, budgetBytes: 10_000, statfs: roomy, onState: (u) => told.push(u) });
    log.onDurable((_, bytes) => budget.added(bytes));
    expect(budget.usage()).toEqual({ state: 'OK', usedBytes: 0, budgetBytes: 10_000 });
    await log.append(policyLoad(9000));
    expect(budget.usage().state).toBe('LOG_NEARLY_FULL');
    expect(budget.full()).toBe(false);
    await log.append(policyLoad(1000));
    expect(budget.full()).toBe(true);
    const { usedBytes } = budget.usage();
    expect(usedBytes).toBeGreaterThanOrEqual(9900);
    // A fresh measurement of the folder agrees with what the batches added.
    await budget.refresh();
    expect(budget.usage().usedBytes).toBe(usedBytes);
    expect(told.map((u) => u.state)).toEqual(['OK', 'LOG_NEARLY_FULL', 'LOG_FULL']);
    await log.close();
  });

  it('while full, measures again before a decision (at most every 250 ms), so freed space counts at once', async () => {
    writeFileSync(join(dir, 'old.seg'), Buffer.alloc(20_000));
    const b = await AuditBudget.open({ dir, budgetBytes: 10_000, statfs: roomy });
    expect(b.full()).toBe(true);
    expect(b.fullNow()).toBe(true); // measured just now
    rmSync(join(dir, 'old.seg'));
    await new Promise((r) => setTimeout(r, 260));
    const again = b.fullNow();
    expect(again).toBeInstanceOf(Promise);
    expect(await again).toBe(false);
    expect(b.fullNow()).toBe(false);
    expect(b.usage()).toMatchObject({ state: 'OK', usedBytes: 0 });
  });

  it('counts every file of the folder, and never budgets more than the filesystem can take less the reserve', async () => {
    writeFileSync(join(dir, '00000000000000000000.seg'), Buffer.alloc(5000));
    writeFileSync(join(dir, 'checkpoint'), Buffer.alloc(100));
    const tight = async (): Promise<FsSpace> => ({ bavail: 3, bsize: 4096, blocks: 1000 });
    const b = await AuditBudget.open({ dir, budgetBytes: 1_000_000, reserveBytes: 4096, statfs: tight });
    // 5100 in the folder + 3 free blocks - one block of reserve.
    expect(b.usage()).toEqual({ state: 'OK', usedBytes: 5100, budgetBytes: 5100 + 2 * 4096 });
    const none = async (): Promise<FsSpace> => ({ bavail: 0, bsize: 4096, blocks: 1000 });
    const c = await AuditBudget.open({ dir, reserveBytes: 4096, statfs: none });
    expect(c.usage()).toMatchObject({ state: 'LOG_FULL', budgetBytes: 1004 });
    // The default reserve: a tenth of a small filesystem, 64 MiB of a large one.
    const small = await AuditBudget.open({ dir, statfs: async () => ({ bavail: 100, bsize: 4096, blocks: 1000 }) });
    expect(small.usage().budgetBytes).toBe(5100 + 100 * 4096 - 409_600);
    const large = await AuditBudget.open({ dir, statfs: roomy });
    expect(large.usage().budgetBytes).toBe(5100 + GiB - 64 * 1024 * 1024);
  });

  it.skipIf(!canMount())('without a configured budget, takes a real small filesystem\'s space less the reserve', async () => {
    const fs = mountSmallFs(1024);
    try {
      const d = join(fs.dir, 'audit');
      const log = await AuditLog.open({ dir: d });
      const b = await AuditBudget.open({ dir: d });
      log.onDurable((_, bytes) => b.added(bytes));
      // A tenth of the 1 MiB filesystem is kept free.
      expect(b.usage().budgetBytes).toBeGreaterThan(800 * 1024);
      expect(b.usage().budgetBytes).toBeLessThanOrEqual(1024 * 1024 - 102 * 1024);
      while (!b.full()) await log.append(policyLoad(64 * 1024));
      // Full with room to spare on the disk: a revocation still fits.
      expect(await log.append({ leaseDecision: { kind: 6, reasonCode: 'NOT_TRUSTED' } })).toBeGreaterThan(0);
      await log.close();
    } finally {
      fs.unmount();
    }
  });

  it('reads a budget setting in bytes or with K, M, G, T, and refuses anything else', () => {
    expect(auditBudgetBytes({ auditBudget: '4096' })).toBe(4096);
    expect(auditBudgetBytes({ auditBudget: '64k' })).toBe(65_536);
    expect(auditBudgetBytes({ auditBudget: '2G' })).toBe(2 * GiB);
    expect(auditBudgetBytes({})).toBeUndefined();
    for (const bad of ['', '0', '-5', '1.5G', '10 MB', '1P', '99999999999T']) {
      expect(() => auditBudgetBytes({ auditBudget: bad }), bad).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });
});
