/**
 * Crash-safe file operations of the audit store: an immutable file is written under a
 * temporary name, fsynced, then linked or renamed into place, and the directory is fsynced,
 * so after a crash a name either refers to complete contents or does not exist.
 */
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes `bytes` to dir/name atomically (replacing any earlier file of that name). */
export async function writeFileDurably(dir: string, name: string, bytes: Uint8Array, mode = 0o640): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
  await fsyncDir(dir);
}
