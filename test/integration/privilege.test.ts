/**
 * The daemon's privileges as the service gives them (deploy/systemd/attestd.service): a
 * non-root user with CAP_SYS_PTRACE as its only capability, ambient, no_new_privs and capset(2)
 * refused by seccomp, started through attestd-proc-opener. Node itself must end up without the capability on every thread and not
 * dumpable, while a caller of another uid is still identified down to its executable's digest
 * through the opener, which keeps the capability and nothing else. The opener answers hostile
 * requests with EINVAL and goes on; once it is gone, callers are refused, never waved through.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { AttestdClient } from '../../daemon/client/client.js';
import { setsHoldingPtrace } from '../../daemon/daemon.js';
import { DAEMON, State, testPolicy } from '../helpers/daemon.js';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';

const ROOT = resolve(import.meta.dirname, '../..');
const OPENER = join(ROOT, 'build/Release/attestd-proc-opener');
/** The service's user stands in as nobody; the test itself (root) is the caller of another uid. */
const SERVICE_UID = 65534;
const PTRACE_BIT = 1n << 19n;
/** The unit's capability settings, as setpriv applies them. */
const SERVICE_CAPS = ['--inh-caps=-all,+sys_ptrace', '--ambient-caps=-all,+sys_ptrace', '--bounding-set=-all,+sys_ptrace'];
const asServiceUser = (caps: string[]) => ['setpriv', `--reuid=${SERVICE_UID}`, `--regid=${SERVICE_UID}`, '--clear-groups', ...caps, '--'];

/**
 * test/proc-opener/no_capset.c, built once per source version: no_new_privs and capset(2)
 * refused with EPERM, as the unit's NoNewPrivileges= and SystemCallFilter=~@privileged do.
 */
function noCapset(): string {
  const source = join(ROOT, 'test/proc-opener/no_capset.c');
  const out = join(tmpdir(), `attestd-no-capset-${createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 16)}`);
  if (!existsSync(out)) {
    execFileSync(process.env.CC ?? 'cc', ['-std=c11', '-O1', '-Wall', '-Wextra', '-Werror', '-o', `${out}.${process.pid}`, source]);
    renameSync(`${out}.${process.pid}`, out);
  }
  return out;
}

function capMask(status: string, name: string): bigint {
  const m = new RegExp(`^${name}:\\s*([0-9a-f]+)$`, 'm').exec(status);
  if (m === null) throw new Error(`no ${name} line`);
  return BigInt(`0x${m[1]}`);
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

async function waitUntil(pred: () => Promise<boolean>, what: string, output: () => string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} not reached\n--- daemon output ---\n${output()}`);
}

describe('the daemon under the service\'s privileges', () => {
  let dir = '';
  let tpm: Swtpm;
  let daemon: ChildProcess;
  let out = '';
  let socket = '';
  const nodeDigest = sha256File(realpathSync(process.execPath));

  const call = async (req: Parameters<AttestdClient['call']>[0]) => {
    const c = await AttestdClient.connect(socket);
    try {
      return await c.call(req);
    } finally {
      c.close();
    }
  };
  const openerPid = (): number => {
    const children = readFileSync(`/proc/${daemon.pid}/task/${daemon.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    const opener = children.find((p) => resolvedPath(`/proc/${p}/exe`) === realpathSync(OPENER));
    if (opener === undefined) throw new Error(`no opener among ${children.join(' ')}`);
    return opener;
  };

  beforeAll(async () => {
    expect(existsSync(OPENER), 'build/Release/attestd-proc-opener (npx node-gyp rebuild)').toBe(true);
    dir = await mkdtemp(join(tmpdir(), 'attestd-priv-'));
    chownSync(dir, SERVICE_UID, SERVICE_UID);
    mkdirSync(join(dir, 'tpm'));
    tpm = await startSwtpm(join(dir, 'tpm'));
    for (const p of [join(dir, 'tpm'), tpm.socketPath, `${tpm.socketPath}.ctrl`]) chmodSync(p, statSync(p).isDirectory() ? 0o755 : 0o666);
    // The rule names this test process's uid (root: another uid than the daemon's) and its
    // executable's digest, so a grant means the digest was read through the opener.
    const policy = testPolicy({ extra: '' }).replace('    lease:', `      exe_sha256: ["${nodeDigest}"]\n    lease:`);
    expect(policy).toContain(`exe_sha256: ["${nodeDigest}"]`);
    writeFileSync(join(dir, 'policy.yaml'), policy);
    socket = join(dir, 'attestd.sock');
    const [cmd, ...args] = [...asServiceUser(SERVICE_CAPS), noCapset(), OPENER, process.execPath, DAEMON, '--tcti', tpm.tcti,
      '--policy', join(dir, 'policy.yaml'), '--state-dir', join(dir, 'state'), '--socket', socket, '--log-level', 'debug'];
    daemon = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    daemon.stdout!.on('data', (d) => (out += d));
    daemon.stderr!.on('data', (d) => (out += d));
    process.on('exit', () => daemon.kill('SIGKILL'));
    await waitUntil(async () => (await call({ getStatus: {} })).getStatus?.state === State.TRUSTED, 'TRUSTED', () => out);
  }, 60_000);

  afterAll(async () => {
    if (daemon && daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon.once('exit', r));
    }
    await tpm?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs Node as the service user with CAP_SYS_PTRACE on no thread, and the opener with that capability only', () => {
    const tasks = readdirSync(`/proc/${daemon.pid}/task`);
    expect(tasks.length).toBeGreaterThan(1);
    for (const tid of tasks) {
      const status = readFileSync(`/proc/${daemon.pid}/task/${tid}/status`, 'utf8');
      expect(status).toMatch(new RegExp(`^Uid:\\s+${SERVICE_UID}\\s`, 'm'));
      // CapInh keeps it where seccomp refuses capset(2), as here and in the unit: harmless,
      // since with no_new_privs and no file capabilities execve grants nothing from it.
      for (const set of ['CapPrm', 'CapEff', 'CapAmb']) expect(capMask(status, set) & PTRACE_BIT, `${set} of thread ${tid}`).toBe(0n);
      expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    }
    const opener = readFileSync(`/proc/${openerPid()}/status`, 'utf8');
    expect(capMask(opener, 'CapEff')).toBe(PTRACE_BIT);
    expect(capMask(opener, 'CapPrm')).toBe(PTRACE_BIT);
    expect(capMask(opener, 'CapAmb')).toBe(0n);
    expect(opener).toMatch(/^NoNewPrivs:\s+1$/m);
  });

  it('identifies a caller of another uid down to its executable\'s digest', async () => {
    const granted = (await call({ acquireLease: {} })).acquireLease!.lease!;
    expect(granted.leaseId).toBeTruthy();
    // The opener's socket is close-on-exec in the daemon: no program it runs inherits it.
    const line = out.split('\n').find((l) => l.includes('"msg":"/proc opener adopted"'));
    const fd = (JSON.parse(line ?? '{}') as { fd?: number }).fd;
    expect(fd, out).toBeDefined();
    const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/${daemon.pid}/fdinfo/${fd}`, 'utf8'))![1]!;
    expect(parseInt(flags, 8) & 0o2000000).toBe(0o2000000);
    // Holders are checked every half second, through the opener too: the lease outlives two checks.
    await new Promise((r) => setTimeout(r, 1200));
    expect((await call({ getStatus: {} })).getStatus!.activeLeases).toBe(1);
  });

  it('is not dumpable: a process of its own uid cannot read its memory or environment', () => {
    const read = (pid: number) => spawnSync(asServiceUser([])[0]!, [...asServiceUser([]).slice(1), 'head', '-c', '1', `/proc/${pid}/environ`]);
    // The same read of a dumpable process of that uid succeeds, so the refusal is the flag's.
    const peer = spawn(asServiceUser([])[0]!, [...asServiceUser([]).slice(1), 'sleep', '30'], { stdio: 'ignore' });
    try {
      expect(read(peer.pid!).status).toBe(0);
      expect(read(daemon.pid!).status).not.toBe(0);
      expect(read(openerPid()).status).not.toBe(0);
    } finally {
      peer.kill('SIGKILL');
    }
  });

  it('refuses callers once the opener is gone, and says so in its log', async () => {
    process.kill(openerPid(), 'SIGKILL');
    await expect(call({ acquireLease: {} })).rejects.toMatchObject({ code: 'PEER_UNIDENTIFIED' });
    await expect(call({ acquireLease: {} })).rejects.toMatchObject({ code: 'PEER_UNIDENTIFIED' });
    expect(out).toMatch(/\/proc opener lost/);
    // Its holder can no longer be checked, so the lease ends rather than outliving it unseen.
    await waitUntil(async () => (await call({ getStatus: {} })).getStatus?.activeLeases === 0, 'no lease', () => out, 5_000);
  });
});

describe('attestd-proc-opener on its own', () => {
  const driver = join(ROOT, 'test/proc-opener/driver.py');
  const run = (seed: number) => JSON.parse(execFileSync(OPENER, ['/usr/bin/python3', driver, String(seed)], { encoding: 'utf8', timeout: 20_000 }));

  it('answers EINVAL to malformed requests, random ones included, and still serves a good one after', () => {
    const EINVAL = 22;
    for (const seed of [1, 2, 3]) {
      const r = run(seed);
      for (const k of ['no_fd', 'regular_fd', 'two_fds', 'wrong_byte', 'long_message', 'garbage']) expect(r[k], k).toBe(EINVAL);
      expect(r.fuzz).toEqual([EINVAL]);
      expect(r.own.code).toBe(0);
      expect(r.own.count).toBe(4);
      expect(r.own.pid).toBe(r.own.self);
      expect(r.own.exe).toBe(realpathSync('/usr/bin/python3'));
    }
  });

  it('answers ESRCH for a process that has exited', () => {
    expect(run(4).exited).toBe(3);
  });

  it('refuses to start a program named by a relative path', () => {
    const r = spawnSync(OPENER, ['python3', '-c', 'pass'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
  });
});

describe('the daemon\'s own capability check', () => {
  it('names each set that holds CAP_SYS_PTRACE, and counts an unreadable line as holding it', () => {
    const status = (prm: string, eff: string, amb: string) => `CapInh:\t0000000000080000\nCapPrm:\t${prm}\nCapEff:\t${eff}\nCapBnd:\t000001ffffffffff\nCapAmb:\t${amb}\n`;
    expect(setsHoldingPtrace(status('0000000000000000', '0000000000000000', '0000000000000000'))).toEqual([]);
    expect(setsHoldingPtrace(status('000001fffff7ffff', '0000000000000000', '0000000000000000'))).toEqual([]);
    expect(setsHoldingPtrace(status('0000000000080000', '0000000000080000', '0000000000000000'))).toEqual(['CapPrm', 'CapEff']);
    expect(setsHoldingPtrace(status('0000000000000000', '0000000000000000', '00000000000fffff'))).toEqual(['CapAmb']);
    expect(setsHoldingPtrace('CapPrm:\t0000000000000000\nCapEff:\tzz\n')).toEqual(['CapEff', 'CapAmb']);
  });

  it('takes only a Unix SOCK_SEQPACKET socket for the opener\'s', () => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e',
      `import { adoptProcOpener } from ${JSON.stringify(join(ROOT, 'dist/daemon/native.js'))};
       try { adoptProcOpener(0, () => {}); } catch (e) { process.stdout.write(e.code + ': ' + e.message); }`],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(r.stdout, r.stderr).toBe('PROC_OPENER_FAILED: fd 0 is not a Unix SOCK_SEQPACKET socket');
  });

  it('refuses to start when told of an opener while it still holds CAP_SYS_PTRACE', () => {
    // Started directly as root, so nothing dropped the capability.
    const r = spawnSync(process.execPath, [DAEMON, '--policy', '/nonexistent/policy.yaml', '--tcti', 'swtpm:path=/nonexistent'],
      { encoding: 'utf8', env: { ...process.env, ATTESTD_PROC_OPENER_FD: '0' }, timeout: 20_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/cannot start: PRIVILEGE_NOT_DROPPED: started by attestd-proc-opener but CAP_SYS_PTRACE is still in CapPrm, CapEff/);
  });
});

function resolvedPath(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}
