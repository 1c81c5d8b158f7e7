/**
 * Bookkeeping for the processes and temporary directories a benchmark run creates: each
 * registers its own stop in `cleanup`, which main runs after every benchmark, on failure
 * and on SIGINT, so a run leaves no process or directory behind.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './stats.js';

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('no package.json above the benchmark scripts');
    dir = parent;
  }
  return dir;
}

/** The package root (the folder holding package.json), from the source tree or from dist/. */
export const ROOT = packageRoot();
const STOP_TIMEOUT_MS = 5000;

/** Stops, in reverse order of start, everything registered. */
class Cleanup {
  private tasks: (() => Promise<void>)[] = [];

  add(task: () => Promise<void>): () => Promise<void> {
    let done: Promise<void> | undefined;
    const once = () => (done ??= task().catch((err: unknown) => {
      process.stderr.write(`bench: cleanup: ${String(err)}\n`);
    }));
    this.tasks.push(once);
    return once;
  }

  async runAll(): Promise<void> {
    const tasks = this.tasks.reverse();
    this.tasks = [];
    for (const t of tasks) await t();
  }
}

export const cleanup = new Cleanup();

/**
 * Processes started and not yet seen to stop. If this process dies without running
 * cleanup (an uncaught error), the exit hook still kills them rather than leave a swtpm or
 * a daemon running.
 */
const running = new Set<number>();
process.on('exit', () => {
  for (const pid of running) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

export function track(pid: number | undefined): void {
  if (pid !== undefined) running.add(pid);
}

export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanup.add(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL if the process is still there after the timeout. */
export async function terminate(pid: number): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const end = Date.now() + STOP_TIMEOUT_MS;
  while (alive(pid) && Date.now() < end) await sleep(20);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
  running.delete(pid);
}

/** Registers a child for cleanup: SIGTERM (as an operator stops the daemon), SIGKILL after the timeout. */
export function supervise(child: ChildProcess): () => Promise<void> {
  track(child.pid);
  const exited = new Promise<void>((resolve) => child.once('exit', () => {
    if (child.pid !== undefined) running.delete(child.pid);
    resolve();
  }));
  return cleanup.add(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
  });
}

/** A memory figure of /proc/PID/status in bytes: VmRSS (resident now) or VmHWM (resident at peak). */
export function procMemoryBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  const kib = line ? Number(line.slice(field.length + 1).replace(/kB/, '').trim()) : Number.NaN;
  if (!Number.isFinite(kib)) throw new Error(`no ${field} for pid ${pid}`);
  return kib * 1024;
}

