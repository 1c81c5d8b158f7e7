/**
 * Real processes as callers of a Unix socket, for the identification tests: the helper
 * program (test/peer-helper/peer_helper.c) built once per source version in two variants with
 * different digests, a caller process driven by one-letter commands, and a listening socket
 * that hands out its accepted connections in order.
 */
import { execFileSync, spawn, type ChildProcessByStdio } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, copyFileSync, existsSync, openSync, readFileSync, readSync, truncateSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

const SOURCE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'peer-helper');

let built: { a: string; b: string } | undefined;

/** Builds the helper once; returns the paths of its two variants. */
export function peerHelpers(): { a: string; b: string } {
  if (built !== undefined) return built;
  const hash = createHash('sha256')
    .update(readFileSync(join(SOURCE_DIR, 'peer_helper.c')))
    .update(readFileSync(join(SOURCE_DIR, 'build.sh')))
    .digest('hex').slice(0, 16);
  const dir = join(tmpdir(), `attestd-peer-helper-${hash}`);
  const paths = { a: join(dir, 'peer-helper-a'), b: join(dir, 'peer-helper-b') };
  if (!existsSync(paths.a) || !existsSync(paths.b)) execFileSync('bash', [join(SOURCE_DIR, 'build.sh'), dir], { stdio: 'pipe' });
  built = paths;
  return paths;
}

/** A copy of `program` at `dest`, made `size` bytes long by a hole after it (an ELF loader ignores trailing bytes). */
export function paddedCopy(program: string, dest: string, size: number): string {
  copyFileSync(program, dest);
  truncateSync(dest, size);
  return dest;
}

/** SHA-256 of a file, read synchronously (so it does not need libuv's pool). */
export function sha256File(path: string): Buffer {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  const buffer = Buffer.alloc(4 << 20);
  try {
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest();
}

/** One helper process; its output lines are queued and read one at a time. */
export class Caller {
  private readonly lines: string[] = [];
  private readonly waiting: ((line: string) => void)[] = [];
  private partial = '';
  readonly exited: Promise<unknown>;

  private constructor(private readonly child: ChildProcessByStdio<Writable, Readable, null>) {
    this.exited = once(child, 'exit');
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      const parts = (this.partial + chunk).split('\n');
      this.partial = parts.pop() ?? '';
      for (const line of parts) {
        const waiter = this.waiting.shift();
        if (waiter) waiter(line);
        else this.lines.push(line);
      }
    });
    child.stdin.on('error', () => undefined);
  }

  /** Starts `program args...` and waits for its banner line. */
  static async start(program: string, args: string[]): Promise<Caller> {
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    const caller = new Caller(child);
    const banner = await Promise.race([caller.nextLine(), caller.exited.then(() => undefined)]);
    if (banner === undefined || !banner.startsWith('peer_helper ')) throw new Error(`${program} did not start`);
    return caller;
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error('not started');
    return this.child.pid;
  }

  nextLine(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  send(command: 'x' | 'u' | 'g' | 'q'): void {
    this.child.stdin.write(command);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/**
 * A listening Unix socket; accept() gives its connections in the order they arrived. They are
 * never read, so a caller that exits does not get its connection closed on this side.
 */
export class Listener {
  private readonly server = net.createServer({ pauseOnConnect: true });
  private readonly queued: net.Socket[] = [];
  private readonly waiting: ((s: net.Socket) => void)[] = [];
  private readonly all: net.Socket[] = [];

  constructor(readonly path: string) {
    this.server.on('connection', (s: net.Socket) => {
      this.all.push(s);
      s.on('error', () => undefined);
      const waiter = this.waiting.shift();
      if (waiter) waiter(s);
      else this.queued.push(s);
    });
  }

  async listen(): Promise<void> {
    this.server.listen(this.path);
    await once(this.server, 'listening');
  }

  accept(): Promise<net.Socket> {
    const s = this.queued.shift();
    if (s) return Promise.resolve(s);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  async close(): Promise<void> {
    for (const s of this.all) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** The descriptor of an accepted socket, as the daemon's server takes it. */
export function socketFd(s: net.Socket): number {
  const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('socket has no descriptor');
  return fd;
}

/** A promise's outcome as a value, so a test can assert on either. */
export async function settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await p };
  } catch (error) {
    return { ok: false, error };
  }
}
