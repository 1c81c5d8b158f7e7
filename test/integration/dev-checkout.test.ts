/**
 * The checkout's own programs: bin/attestctl, bin/attestd and bin/attestd-oci-hook, reached
 * through the PATH line the README gives and the one `npm start` prints, as a developer in a
 * second terminal would use them. Runs after scripts/prepare.sh (npm test), on the dist/ build.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runToEnd, testPolicy } from '../helpers/daemon.js';
import { startSwtpm } from '../helpers/swtpm.js';

const ROOT = resolve(import.meta.dirname, '../..');
const PROGRAMS = ['attestctl', 'attestd', 'attestd-oci-hook'] as const;

const scratch = mkdtempSync(join(tmpdir(), 'attestd-checkout-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * A shell as a new terminal has it: no ATTESTD_* from the test's environment, and a PATH with
 * node and the system's tools but nothing of this checkout.
 */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ATTESTD_')) env[k] = v;
  return { ...env, PATH: `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`, ...extra };
}

interface ShellResult { code: number | null; stdout: string; stderr: string }

function sh(script: string, cwd: string, env: NodeJS.ProcessEnv = cleanEnv(), timeoutMs = 20_000): Promise<ShellResult> {
  return runToEnd('sh', ['-c', script], { cwd, env }, timeoutMs);
}

/** The one `export PATH=...` line of the README's shell examples. */
function readmePathLine(): string {
  const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n').filter((l) => l.startsWith('export PATH='));
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe('the checkout\'s bin/', () => {
  it('the README\'s PATH line, run in the checkout, finds all three programs there and each answers --help', async () => {
    const script = [readmePathLine(), ...PROGRAMS.map((p) => `command -v ${p}`), ...PROGRAMS.map((p) => `${p} --help > /dev/null || exit 9`)].join('\n');
    const r = await sh(script, ROOT);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(PROGRAMS.map((p) => join(ROOT, 'bin', p)));

    const help = await sh(`${readmePathLine()}\nattestctl --help`, ROOT);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: attestctl /);
  });

  it('a symlink to bin/attestctl from another folder runs the checkout\'s build', async () => {
    const links = join(scratch, 'links');
    mkdirSync(links);
    symlinkSync(join(ROOT, 'bin', 'attestctl'), join(links, 'attestctl'));
    const r = await sh('attestctl --help', scratch, cleanEnv({ PATH: `${links}:${cleanEnv().PATH ?? ''}` }));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Usage: attestctl /);
  });

  it('without a build each program says what to run and fails with its own failure code', async () => {
    const bare = join(scratch, 'bare');
    mkdirSync(join(bare, 'bin'), { recursive: true });
    for (const [program, code] of [['attestctl', 1], ['attestd', 1], ['attestd-oci-hook', 4]] as const) {
      copyFileSync(join(ROOT, 'bin', program), join(bare, 'bin', program));
      const r = await sh(`bin/${program} --help`, bare);
      expect(r.code).toBe(code);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`${program}: ${bare}/dist/`);
      expect(r.stderr).toContain('scripts/prepare.sh');
    }
  });

  it('npm start prints a line that, pasted into another shell anywhere, gives attestctl its daemon', async () => {
    const tpm = await startSwtpm();
    const work = join(scratch, 'start');
    mkdirSync(work);
    const policy = join(work, 'policy.yaml');
    writeFileSync(policy, testPolicy());
    // start.sh as `npm start` runs it, on this TPM and policy, without rebuilding dist/.
    const start: ChildProcess = spawn('bash', [join(ROOT, 'scripts/start.sh')], {
      cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
      env: cleanEnv({ ATTESTD_START_SKIP_BUILD: '1', ATTESTD_TCTI: tpm.tcti, ATTESTD_POLICY: policy, ATTESTD_STATE_DIR: join(work, 'state'),
        ATTESTD_LOG_LEVEL: 'warn' }),
    });
    let printed = '';
    start.stdout!.on('data', (d) => (printed += d));
    start.stderr!.on('data', (d) => (printed += d));
    const exited = new Promise<void>((res) => start.on('exit', () => res()));
    try {
      const end = Date.now() + 20_000;
      while (Date.now() < end && !/^ {2}attestctl status$/m.test(printed)) await new Promise((r) => setTimeout(r, 50));
      const exportLine = printed.split('\n').find((l) => l.startsWith('  export PATH='))?.trim();
      expect(exportLine, printed).toBeDefined();
      expect(exportLine).toContain(join(ROOT, 'bin'));

      // Another terminal, another folder: the printed line alone is enough.
      const elsewhere = join(work, 'elsewhere');
      mkdirSync(elsewhere);
      let status: ShellResult | undefined;
      while (Date.now() < end) {
        status = await sh(`${exportLine!}\nattestctl status --json`, elsewhere);
        if (status.code === 0) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(status?.code, `${status?.stderr ?? ''}\n--- npm start ---\n${printed}`).toBe(0);
      expect(JSON.parse(status!.stdout).state).toBe('TRUSTED');

      const run = await sh(`${exportLine!}\nattestctl run -- sh -c 'test -n "$ATTESTD_LEASE_ID" && exit 5'`, elsewhere);
      expect(run.code, run.stderr).toBe(5);
    } finally {
      // SIGTERM to start.sh: its trap stops the daemon; then nothing of its group may remain.
      start.kill('SIGTERM');
      const t = setTimeout(() => { try { process.kill(-start.pid!, 'SIGKILL'); } catch { /* gone */ } }, 10_000);
      await exited;
      clearTimeout(t);
      await tpm.dispose();
    }
  });
  it('ten Ctrl-C stops of npm start in one state folder, on its own software TPM, all end TRUSTED with no lockout counted', async () => {
    const state = join(scratch, 'cycles');
    const env = cleanEnv({ ATTESTD_START_SKIP_BUILD: '1', ATTESTD_STATE_DIR: state, ATTESTD_LOG_LEVEL: 'warn' });
    const status: NodeJS.ProcessEnv = { ...env, ATTESTD_SOCKET: join(state, 'attestd.sock') };
    const akPins = new Set<string>();
    for (let cycle = 1; cycle <= 10; cycle++) {
      // npm start with no TPM device and no TCTI: start.sh runs its own swtpm under the state folder.
      const start: ChildProcess = spawn('bash', [join(ROOT, 'scripts/start.sh')], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
      let printed = '';
      start.stdout!.on('data', (d) => (printed += d));
      start.stderr!.on('data', (d) => (printed += d));
      const exited = new Promise<number | null>((res) => start.on('exit', (code) => res(code)));
      let swtpmPid = 0;
      try {
        let got: { state?: string; ak_public_pem?: string } = {};
        for (const end = Date.now() + 20_000; Date.now() < end && got.state !== 'TRUSTED';) {
          await new Promise((r) => setTimeout(r, 200));
          const r = await sh('attestctl status --json', ROOT, { ...status, PATH: `${join(ROOT, 'bin')}:${status.PATH!}` });
          if (r.code === 0) got = JSON.parse(r.stdout) as typeof got;
        }
        expect(got.state, `cycle ${cycle}\n${printed}`).toBe('TRUSTED');
        swtpmPid = Number(readFileSync(join(state, 'swtpm', 'swtpm.pid'), 'utf8'));
        akPins.add(got.ak_public_pem ?? '');
        if (cycle === 10) {
          const tcti = readFileSync(join(state, 'tcti'), 'utf8').trim();
          const caps = await sh('tpm2_getcap properties-variable', ROOT, { ...env, TPM2TOOLS_TCTI: tcti });
          expect(caps.stdout).toMatch(/TPM2_PT_LOCKOUT_COUNTER: 0x0\b/);
        }
      } finally {
        // Ctrl-C: SIGINT to the whole foreground group.
        process.kill(-start.pid!, 'SIGINT');
        const t = setTimeout(() => { try { process.kill(-start.pid!, 'SIGKILL'); } catch { /* gone */ } }, 10_000);
        expect(await exited).toBe(130);
        clearTimeout(t);
      }
      // The software TPM was shut down in order, then stopped.
      expect(printed).not.toMatch(/did not take TPM2_Shutdown/);
      const alive = () => { try { process.kill(swtpmPid, 0); return true; } catch { return false; } };
      for (const end = Date.now() + 5000; Date.now() < end && alive();) await new Promise((r) => setTimeout(r, 50));
      expect(alive()).toBe(false);
    }
    expect(akPins.size).toBe(1);
  }, 240_000);
});
