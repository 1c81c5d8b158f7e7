/**
 * A small tmpfs for disk-full tests: filling it makes every write fail with ENOSPC, as on a
 * real full disk. Needs root (CI and the dev machines run as root); callers skip otherwise.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SmallFs {
  dir: string;
  /** Fills the remaining space. */
  fill(): void;
  /** Frees what fill() took. */
  free(): void;
  unmount(): void;
}

export function canMount(): boolean {
  return process.getuid?.() === 0;
}

export function mountSmallFs(sizeKiB = 1024): SmallFs {
  const dir = mkdtempSync(join(tmpdir(), 'attestd-smallfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k`, 'tmpfs', dir]);
  const filler = join(dir, 'filler');
  return {
    dir,
    fill() {
      try {
        writeFileSync(filler, Buffer.alloc(sizeKiB * 1024));
      } catch {
        // ENOSPC once the disk is full: that is the point.
      }
    },
    free() {
      rmSync(filler, { force: true });
    },
    unmount() {
      execFileSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
