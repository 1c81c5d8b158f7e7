/**
 * Holding libuv's thread pool busy, to show that some work does not need it and that other
 * work would queue behind it. Each open(2) of a FIFO for reading blocks one pool thread until
 * a writer appears; release() gives every FIFO a writer, so the opens complete and the pool is
 * free again.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, unlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';

/** The number of threads in this process's libuv pool. */
export function threadPoolSize(): number {
  const n = Number(process.env.UV_THREADPOOL_SIZE);
  return Number.isInteger(n) && n > 0 ? Math.min(n, 1024) : 4;
}

/** Blocks every pool thread (and queues two more opens behind them); returns the release. */
export function blockThreadPool(dir: string, count = threadPoolSize() + 2): () => Promise<void> {
  const fifos = Array.from({ length: count }, (_, i) => join(dir, `pool-blocker-${process.pid}-${i}`));
  for (const f of fifos) execFileSync('mkfifo', [f]);
  const readers = fifos.map((f) => open(f, 'r'));
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    // On Linux an O_RDWR open of a FIFO never blocks and counts as a writer.
    const writers = fifos.map((f) => openSync(f, constants.O_RDWR | constants.O_NONBLOCK));
    try {
      for (const reader of await Promise.all(readers)) await reader.close();
    } finally {
      for (const w of writers) closeSync(w);
      for (const f of fifos) unlinkSync(f);
    }
  };
}
