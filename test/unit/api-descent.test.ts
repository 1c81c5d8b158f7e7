import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { AttestdError } from '../../daemon/base/errors.js';
import { MAX_DESCENT_STEPS, descendsFrom, parseParentPid, readStartTime } from '../../daemon/api/peer.js';

describe('the parent pid in /proc/PID/stat', () => {
  it('reads field 4, past a command name with spaces and parentheses', () => {
    expect(parseParentPid('42 (sleep) S 41 42 1 0 -1')).toBe(41);
    expect(parseParentPid('42 (a) b) (c) R 7 42 1 0 -1')).toBe(7);
    expect(parseParentPid(readFileSync('/proc/self/stat', 'utf8'))).toBe(process.ppid);
  });

  it('refuses text without a readable parent pid', () => {
    for (const bad of ['', '42 sleep S 41', '42 (x) S', '42 (x) S -1 0', '42 (x) S 0x1 0', '42 (x) S 99999999999 0']) {
      expect(() => parseParentPid(bad)).toThrow(AttestdError);
    }
  });

  it('answers a number or AttestdError for any bytes', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), (text) => {
      try {
        const v = parseParentPid(text);
        return Number.isInteger(v) && v >= 0 && v <= 9_999_999_999;
      } catch (err) {
        return err instanceof AttestdError;
      }
    }));
  });
});

describe('descent through the kernel\'s parent chain', () => {
  it('finds a grandchild under this process, refuses this process itself, its parent and a wrong start time', async () => {
    const sh = spawn('sh', ['-c', 'sleep 30 & echo $!; wait'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let grandchild = 0;
    try {
      grandchild = await new Promise<number>((resolve) => sh.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
      const me = { pid: process.pid, startTime: readStartTime(process.pid) };
      expect(descendsFrom(sh.pid!, me)).toBe(true);
      expect(descendsFrom(grandchild, me)).toBe(true);
      expect(descendsFrom(grandchild, { pid: sh.pid!, startTime: readStartTime(sh.pid!) })).toBe(true);
      expect(descendsFrom(process.pid, me)).toBe(false);
      expect(descendsFrom(process.ppid, me)).toBe(false);
      expect(descendsFrom(grandchild, { ...me, startTime: me.startTime + 1n })).toBe(false);
      expect(descendsFrom(0x3fff_fff0, me)).toBe(false);
      expect(MAX_DESCENT_STEPS).toBe(64);
    } finally {
      if (grandchild > 0) process.kill(grandchild, 'SIGKILL');
      sh.kill('SIGKILL');
    }
  });
});
