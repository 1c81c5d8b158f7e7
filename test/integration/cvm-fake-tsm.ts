/**
 * A fake configfs-tsm provider for the CVM tests: it polls a tree like
 * /sys/kernel/config/tsm and answers each report entry whose 64-byte inblob has no outblob
 * yet, at the time of the request, as the kernel's sev_guest provider does: outblob (the
 * report over that inblob), auxblob (the certificate table), provider and generation. What
 * it answers is up to `answer`, which a test may change between epochs.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TsmAnswer {
  outblob: Buffer;
  auxblob?: Buffer;
  provider?: string;
}

export interface FakeTsm {
  root: string;
  /** Reports answered so far. */
  answered(): number;
  stop(): void;
}

export function startFakeTsm(answer: (inblob: Buffer) => TsmAnswer): FakeTsm {
  const root = mkdtempSync(join(tmpdir(), 'attestd-tsm-'));
  mkdirSync(join(root, 'report'));
  let count = 0;
  const timer = setInterval(() => {
    for (const name of readdirSync(join(root, 'report'))) {
      const dir = join(root, 'report', name);
      if (!existsSync(join(dir, 'inblob')) || existsSync(join(dir, 'outblob'))) continue;
      const data = readFileSync(join(dir, 'inblob'));
      if (data.length !== 64) continue;
      const a = answer(data);
      writeFileSync(join(dir, 'provider'), `${a.provider ?? 'sev_guest'}\n`);
      if (a.auxblob) writeFileSync(join(dir, 'auxblob'), a.auxblob);
      writeFileSync(join(dir, 'generation'), '1');
      writeFileSync(join(dir, 'outblob'), a.outblob);
      count++;
    }
  }, 5);
  return {
    root,
    answered: () => count,
    stop: () => {
      clearInterval(timer);
      rmSync(root, { recursive: true, force: true });
    },
  };
}
