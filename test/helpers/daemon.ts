/**
 * Runs the real daemon (the compiled dist/ build, as an operator would) against a software
 * TPM for integration tests, plus attestctl as a subprocess and a socket client.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { AttestdClient } from '../../daemon/client/client.js';
import { startSwtpm, type Swtpm } from './swtpm.js';
import { attestd } from '../../daemon/gen/proto.js';

const ROOT = resolve(import.meta.dirname, '../..');
export const DAEMON = join(ROOT, 'dist/daemon/main.js');
export const ATTESTCTL = join(ROOT, 'dist/daemon/cli/attestctl.js');
export const State = attestd.lease.v1.GetStatusResponse.State;

if (!existsSync(DAEMON)) throw new Error('dist/ is missing: run `npm test` (or scripts/prepare.sh) first');

/** A policy for tests: the swtpm's all-zero PCRs 0-7 and 16, a fast interval, root may lease. */
export function testPolicy(opts: { interval?: string; maxAge?: string; ttl?: string; extra?: string } = {}): string {
  const zero = '"' + '0'.repeat(64) + '"';
  return `version: 1
attestation:
  interval: ${opts.interval ?? '500ms'}
  max_age: ${opts.maxAge ?? '2s'}
pcrs:
  sha256:
${[0, 1, 2, 3, 4, 5, 6, 7, 16].map((i) => `    ${i}: ${zero}`).join('\n')}
rules:
  - name: tests
    match:
      uids: [${process.getuid?.() ?? 0}]
    lease:
      ttl: ${opts.ttl ?? '30s'}
      scopes: ["gpu:all"]
${opts.extra ?? ''}`;
}

export interface RunningDaemon {
  dir: string;
  socket: string;
  policyPath: string;
  stateDir: string;
  proc: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  client(): Promise<AttestdClient>;
  status(): Promise<attestd.lease.v1.GetStatusResponse>;
  waitFor(pred: (s: attestd.lease.v1.GetStatusResponse) => boolean, timeoutMs?: number): Promise<attestd.lease.v1.GetStatusResponse>;
  stop(): Promise<void>;
}

export async function startDaemon(opts: { tcti: string; policy?: string; stateDir?: string; waitTrusted?: boolean; args?: string[];
  env?: Record<string, string> }): Promise<RunningDaemon> {
  const dir = await mkdtemp(join(tmpdir(), 'attestd-it-'));
  const socket = join(dir, 'attestd.sock');
  const policyPath = join(dir, 'policy.yaml');
  await writeFile(policyPath, opts.policy ?? testPolicy());
  const stateDir = opts.stateDir ?? join(dir, 'state');
  const proc = spawn(process.execPath, [DAEMON, '--tcti', opts.tcti, '--policy', policyPath, '--state-dir', stateDir,
    '--socket', socket, '--log-level', 'debug', ...(opts.args ?? [])], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((res) => proc.on('exit', (code) => res(code)));
  process.on('exit', () => proc.kill('SIGKILL'));

  const d: RunningDaemon = {
    dir, socket, policyPath, stateDir, proc, exited, output: () => out,
    client: () => AttestdClient.connect(socket),
    async status() {
      const c = await AttestdClient.connect(socket);
      try {
        return (await c.call({ getStatus: {} })).getStatus as attestd.lease.v1.GetStatusResponse;
      } finally {
        c.close();
      }
    },
    async waitFor(pred, timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs;
      let last: attestd.lease.v1.GetStatusResponse | undefined;
      while (Date.now() < end) {
        try {
          last = await d.status();
          if (pred(last)) return last;
        } catch {
          // not listening yet
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`condition not reached; last status ${JSON.stringify(last)}\n--- daemon output ---\n${out}`);
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  const started = await Promise.race([
    exited.then((code) => ({ code })),
    (async () => {
      const end = Date.now() + 15_000;
      while (Date.now() < end && !existsSync(socket)) await new Promise((r) => setTimeout(r, 25));
      return { code: undefined };
    })(),
  ]);
  if (started.code !== undefined) throw Object.assign(new Error(`daemon exited with ${started.code}: ${out}`), { exitCode: started.code, output: out });
  if (opts.waitTrusted ?? true) await d.waitFor((s) => s.state === State.TRUSTED);
  return d;
}

export interface CtlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion (killed after `timeoutMs`), collecting its output. */
export function runToEnd(command: string, args: string[], options: SpawnOptions = {}, timeoutMs = 20_000): Promise<CtlResult> {
  return new Promise((res) => {
    const p = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d) => (stdout += d));
    p.stderr!.on('data', (d) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      res({ code, stdout, stderr });
    });
  });
}

/** Runs attestctl to completion. */
export function attestctl(args: string[], socket?: string, timeoutMs = 20_000): Promise<CtlResult> {
  return runToEnd(process.execPath, [ATTESTCTL, ...(socket ? ['--socket', socket] : []), ...args], {}, timeoutMs);
}

/** Starts attestctl without waiting for it. */
export function spawnAttestctl(args: string[], socket: string): ChildProcess {
  return spawn(process.execPath, [ATTESTCTL, '--socket', socket, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * One software TPM and one daemon for every test of a file: registers the hooks and returns
 * a getter, valid inside tests.
 */
export function sharedDaemon(policy?: string): () => { tpm: Swtpm; d: RunningDaemon } {
  let tpm: Swtpm | undefined;
  let d: RunningDaemon | undefined;
  beforeAll(async () => {
    tpm = await startSwtpm();
    d = await startDaemon({ tcti: tpm.tcti, policy });
  });
  afterAll(async () => {
    await d?.stop();
    await tpm?.dispose();
  });
  return () => ({ tpm: tpm!, d: d! });
}

/** The well-behaved client: a fresh connection acquires a lease and releases it. */
export async function leaseRoundTrip(d: RunningDaemon): Promise<void> {
  const c = await d.client();
  try {
    const got = await c.call({ acquireLease: {} });
    expect(got.acquireLease?.lease?.leaseId).toMatch(/^[0-9a-f]{32}$/);
    await c.call({ releaseLease: { leaseId: got.acquireLease!.lease!.leaseId } });
  } finally {
    c.close();
  }
}
