/**
 * Software TPMs for the benchmarks, started through scripts/swtpm.sh (state in a temporary
 * directory, stopped through its pid file), and a runner for tpm2-tools against them.
 */
import { execFile, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanup, ROOT, tempDir, terminate, track } from './processes.js';

export interface SoftTpm {
  dir: string;
  tcti: string;
  pid: number;
  stop(): Promise<void>;
}

async function pidOf(dir: string): Promise<number | undefined> {
  const text = await readFile(join(dir, 'swtpm.pid'), 'utf8').catch(() => '');
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** A fresh swtpm in its own temporary state directory. */
export async function startSwtpm(): Promise<SoftTpm> {
  const dir = await tempDir('attestd-bench-swtpm-');
  // Registered before the script runs: a swtpm that started but never answered is stopped too.
  const stop = cleanup.add(async () => {
    const pid = await pidOf(dir);
    if (pid !== undefined) await terminate(pid);
  });
  const tcti = await new Promise<string>((resolve, reject) => {
    execFile('bash', [join(ROOT, 'scripts/swtpm.sh'), dir], (err, stdout, stderr) => {
      if (err) reject(new Error(`swtpm.sh failed: ${stderr || err.message}`));
      else resolve(stdout.trim().split('\n').pop() ?? '');
    });
  });
  const pid = await pidOf(dir);
  if (pid === undefined) throw new Error(`swtpm.sh left no pid in ${dir}`);
  track(pid);
  return { dir, tcti, pid, stop };
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one tpm2-tools command (e.g. ['tpm2_pcrreset', '16']) against `tcti`. */
export function tpm2(args: string[], tcti: string, cwd?: string): Promise<ToolResult> {
  const [bin, ...rest] = args;
  if (bin === undefined) return Promise.reject(new Error('tpm2: no command'));
  const env: NodeJS.ProcessEnv = { ...process.env, TPM2TOOLS_TCTI: tcti };
  // The in-process TPM code may have quietened tpm2-tss logging in this process's environment.
  delete env.TSS2_LOG;
  return new Promise((resolve, reject) => {
    const child = spawn(bin, rest, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

/** Like tpm2, but a non-zero exit is an error. */
export async function tpm2Ok(args: string[], tcti: string, cwd?: string): Promise<ToolResult> {
  const r = await tpm2(args, tcti, cwd);
  if (r.code !== 0) throw new Error(`${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r;
}

