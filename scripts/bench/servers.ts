/**
 * The servers the benchmarks talk to: the daemon (the compiled dist/ build, as an operator
 * runs it, stopped with SIGTERM) and the echo baseline, each in its own process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AttestdClient } from '../../daemon/client/client.js';
import { attestd } from '../../daemon/gen/proto.js';
import { ROOT, supervise, tempDir } from './processes.js';
import { sleep } from './stats.js';

export const State = attestd.lease.v1.GetStatusResponse.State;
export type Status = attestd.lease.v1.GetStatusResponse;

const DAEMON = join(ROOT, 'dist/daemon/main.js');
const OUTPUT_TAIL = 64 * 1024;

/**
 * A policy pinning the bare swtpm's PCRs (all zero) with one rule for this process's uid.
 * max_age and ttl are long so no lease expires and no epoch goes stale mid-benchmark.
 */
export function benchPolicy(opts: { interval: string; maxAge: string; ttl: string }): string {
  const zero = `"${'0'.repeat(64)}"`;
  const pcrs = [0, 1, 2, 3, 4, 5, 6, 7, 16].map((i) => `    ${i}: ${zero}`).join('\n');
  return [
    'version: 1',
    'attestation:',
    `  interval: ${opts.interval}`,
    `  max_age: ${opts.maxAge}`,
    'pcrs:',
    '  sha256:',
    pcrs,
    'rules:',
    '  - name: bench',
    '    match:',
    `      uids: [${process.getuid?.() ?? 0}]`,
    '    lease:',
    `      ttl: ${opts.ttl}`,
    '      scopes: ["gpu:all"]',
    '',
  ].join('\n');
}

export interface BenchDaemon {
  pid: number;
  socket: string;
  stateDir: string;
  status(): Promise<Status>;
  waitFor(pred: (s: Status) => boolean, timeoutMs?: number): Promise<Status>;
  output(): string;
  stop(): Promise<void>;
}

export async function statusAt(socket: string): Promise<Status> {
  const c = await AttestdClient.connect(socket);
  try {
    return (await c.call({ getStatus: {} })).getStatus as Status;
  } finally {
    c.close();
  }
}

/** Starts dist/daemon/main.js on a temporary state directory and waits until it is TRUSTED. */
export async function startDaemon(opts: { tcti: string; policy: string }): Promise<BenchDaemon> {
  const dir = await tempDir('attestd-bench-daemon-');
  const socket = join(dir, 'attestd.sock');
  const policyPath = join(dir, 'policy.yaml');
  const stateDir = join(dir, 'state');
  await writeFile(policyPath, opts.policy);
  const child: ChildProcess = spawn(process.execPath, [DAEMON, '--tcti', opts.tcti, '--policy', policyPath,
    '--state-dir', stateDir, '--socket', socket, '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > OUTPUT_TAIL) out = out.slice(-OUTPUT_TAIL);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const stop = supervise(child);
  if (child.pid === undefined) throw new Error('the daemon could not be spawned');
  const d: BenchDaemon = {
    pid: child.pid,
    socket,
    stateDir,
    status: () => statusAt(socket),
    output: () => out,
    stop,
    async waitFor(pred, timeoutMs = 15_000) {
      const end = Date.now() + timeoutMs;
      let last: Status | undefined;
      while (Date.now() < end) {
        if (child.exitCode !== null) throw new Error(`the daemon exited (${child.exitCode}):\n${out}`);
        try {
          last = await statusAt(socket);
          if (pred(last)) return last;
        } catch {
          // not listening yet
        }
        await sleep(20);
      }
      throw new Error(`daemon condition not reached; last status ${JSON.stringify(last)}\n${out}`);
    },
  };
  await d.waitFor((s) => s.state === State.TRUSTED);
  return d;
}

export interface EchoServer {
  socket: string;
  pid: number;
  stop(): Promise<void>;
}

/** The echo baseline (echo-server.ts) in its own process, as the daemon runs in its own. */
export async function startEchoServer(): Promise<EchoServer> {
  const dir = await tempDir('attestd-bench-echo-');
  const socket = join(dir, 'echo.sock');
  const script = join(dirname(fileURLToPath(import.meta.url)), 'echo-server.js');
  const child = spawn(process.execPath, [script, socket], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = supervise(child);
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`echo server exited (${code}): ${err}`)));
  });
  if (child.pid === undefined) throw new Error('the echo server could not be spawned');
  return { socket, pid: child.pid, stop };
}
