/**
 * A software TPM (swtpm) for integration tests, and a runner for tpm2-tools against it.
 *
 * Each call to startSwtpm runs its own swtpm process on Unix sockets in its own state
 * directory, already started (TPM2_Startup(CLEAR)), so tests never share TPM state.
 * startManufacturedSwtpm first runs swtpm_setup on a fresh state directory, for a TPM with
 * chosen PCR banks and, optionally, EK certificates in NV issued by a throwaway local CA.
 * Every process started here is killed when the test process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Swtpm {
  dir: string;
  /** TCTI string for Tpm.open and TPM2TOOLS_TCTI. */
  tcti: string;
  socketPath: string;
  /** Graceful stop (SIGTERM); swtpm saves its state. */
  stop(): Promise<void>;
  /** SIGKILL: a crash, as the client sees it. */
  kill(): Promise<void>;
  /** (Re)starts on the same state directory and waits until the socket accepts. */
  start(): Promise<void>;
  /** stop(), then removes the state directory if startSwtpm created it. */
  dispose(): Promise<void>;
  /** Pid of the running swtpm (to stop it with SIGSTOP and simulate a hung TPM). */
  pid(): number;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const child of live) child.kill('SIGKILL');
  };
  process.on('exit', killAll);
  // A test worker ended by a signal runs no 'exit' handlers: clean up, then die of it.
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killAll();
      process.kill(process.pid, sig);
    });
  }
}

const START_TIMEOUT_MS = 5000;
const STOP_TIMEOUT_MS = 3000;

export async function startSwtpm(dir?: string): Promise<Swtpm> {
  installExitHook();
  const ownsDir = dir === undefined;
  const stateDir = dir ?? (await mkdtemp(join(tmpdir(), 'attestd-swtpm-')));
  const socketPath = join(stateDir, 'tpm.sock');
  let child: ChildProcess | null = null;
  let stderr = '';

  const waitExit = (c: ChildProcess, signal: NodeJS.Signals): Promise<void> =>
    new Promise((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) {
        resolve();
        return;
      }
      const timer = setTimeout(() => c.kill('SIGKILL'), STOP_TIMEOUT_MS);
      c.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      c.kill(signal);
    });

  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    child = null;
    if (c === null) return;
    // A stopped swtpm (SIGSTOP in a test) must be able to act on the signal.
    c.kill('SIGCONT');
    await waitExit(c, signal);
    live.delete(c);
  };

  const sw: Swtpm = {
    dir: stateDir,
    tcti: `swtpm:path=${socketPath}`,
    socketPath,
    async start() {
      if (child !== null) throw new Error('swtpm is already running');
      await unlink(socketPath).catch(() => undefined);
      await unlink(`${socketPath}.ctrl`).catch(() => undefined);
      stderr = '';
      const c = spawn(
        'swtpm',
        [
          'socket', '--tpm2',
          '--tpmstate', `dir=${stateDir}`,
          '--server', `type=unixio,path=${socketPath}`,
          '--ctrl', `type=unixio,path=${socketPath}.ctrl`,
          '--flags', 'not-need-init,startup-clear',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      c.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      child = c;
      live.add(c);
      try {
        await waitForSocket(socketPath, c, () => stderr);
      } catch (err) {
        await halt('SIGKILL');
        throw err;
      }
    },
    stop: () => halt('SIGTERM'),
    kill: () => halt('SIGKILL'),
    pid() {
      if (child?.pid === undefined) throw new Error('swtpm is not running');
      return child.pid;
    },
    async dispose() {
      await halt('SIGTERM');
      if (ownsDir) await rm(stateDir, { recursive: true, force: true });
    },
  };
  await sw.start();
  return sw;
}

async function waitForSocket(path: string, c: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (c.exitCode !== null || c.signalCode !== null) {
      throw new Error(`swtpm exited (${c.exitCode ?? c.signalCode}): ${stderr()}`);
    }
    if (await accepts(path)) return;
    if (Date.now() > deadline) throw new Error(`swtpm did not listen on ${path}: ${stderr()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Runs a tpm2-tools command ("pcrread" or "tpm2_pcrread") against `tcti`. */
export function tpm2(args: string[], tcti: string): Promise<{ stdout: Buffer; stderr: string; code: number }> {
  const [tool, ...rest] = args;
  if (tool === undefined) return Promise.reject(new Error('tpm2: no tool given'));
  const bin = tool.startsWith('tpm2_') ? tool : `tpm2_${tool}`;
  const env: NodeJS.ProcessEnv = { ...process.env, TPM2TOOLS_TCTI: tcti };
  // The daemon code may have silenced tpm2-tss logging in this process; the tools keep theirs.
  delete env.TSS2_LOG;
  return new Promise((resolve, reject) => {
    const c = spawn(bin, rest, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => c.kill('SIGKILL'), 20_000);
    c.stdout.on('data', (d: Buffer) => out.push(d));
    c.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    c.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    c.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ stdout: Buffer.concat(out), stderr: err, code: code ?? (signal ? 128 : 1) });
    });
  });
}

export interface ManufactureOptions {
  /** Banks to allocate, e.g. ['sha256', 'sha384']; swtpm_setup's default is sha256 alone. */
  pcrBanks?: string[];
  /** RSA and ECC EKs with certificates (and a platform certificate) in NV, NV then locked. */
  ekCerts?: boolean;
}

export interface ManufacturedSwtpm extends Swtpm {
  /** The local CA that issued the EK certificates (only with `ekCerts`), as PEM. */
  localCa?: { issuerPem: string; rootPem: string };
}

const SETUP_TIMEOUT_MS = 20_000;

/**
 * A swtpm on state that swtpm_setup manufactured, like a vTPM host provisions one, started.
 * swtpm_localca issues the EK certificates from a CA it creates in a private directory; its
 * intermediate ("issuercert") and root come back as `localCa`. dispose() removes everything.
 */
export async function startManufacturedSwtpm(opts: ManufactureOptions = {}): Promise<ManufacturedSwtpm> {
  const base = await mkdtemp(join(tmpdir(), 'attestd-swtpm-mfg-'));
  try {
    const stateDir = join(base, 'state');
    const caDir = join(base, 'ca');
    await mkdir(stateDir);
    await mkdir(caDir);
    const setupConf = join(base, 'swtpm_setup.conf');
    const localcaConf = join(base, 'swtpm-localca.conf');
    const localcaOptions = join(base, 'swtpm-localca.options');
    await writeFile(
      localcaConf,
      [`statedir = ${caDir}`, `signingkey = ${join(caDir, 'signkey.pem')}`,
        `issuercert = ${join(caDir, 'issuercert.pem')}`, `certserial = ${join(caDir, 'certserial')}`, ''].join('\n'),
    );
    await writeFile(localcaOptions, '--platform-manufacturer attestd\n--platform-version 2.1\n--platform-model test\n');
    await writeFile(
      setupConf,
      ['create_certs_tool = swtpm_localca', `create_certs_tool_config = ${localcaConf}`,
        `create_certs_tool_options = ${localcaOptions}`, ''].join('\n'),
    );
    const args = ['--tpm2', '--tpmstate', stateDir, '--config', setupConf, '--overwrite'];
    if (opts.pcrBanks !== undefined) args.push('--pcr-banks', opts.pcrBanks.join(','));
    if (opts.ekCerts === true) args.push('--create-ek-cert', '--create-platform-cert', '--lock-nvram');
    await run('swtpm_setup', args, SETUP_TIMEOUT_MS);

    const sw = await startSwtpm(stateDir);
    const localCa =
      opts.ekCerts === true
        ? {
            issuerPem: await readFile(join(caDir, 'issuercert.pem'), 'utf8'),
            rootPem: await readFile(join(caDir, 'swtpm-localca-rootca-cert.pem'), 'utf8'),
          }
        : undefined;
    return {
      ...sw,
      localCa,
      async dispose() {
        await sw.dispose();
        await rm(base, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(base, { recursive: true, force: true });
    throw err;
  }
}

/** Runs a program to completion; rejects with its output when it fails. */
export function run(bin: string, args: string[], timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    c.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    c.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    c.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${bin} ${args.join(' ')} exited ${code ?? signal}: ${out}`));
    });
  });
}
