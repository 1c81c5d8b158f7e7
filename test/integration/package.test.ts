/**
 * The Debian package (scripts/package.sh), its systemd units and the Kubernetes manifest: the
 * package is built once into a temporary folder and checked with dpkg-deb, lintian and
 * systemd-analyze; its maintainer scripts run against stub commands; its files are unpacked
 * into a temporary root (never installed on this machine) and run from there.
 */
import { execFile, spawnSync } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const ROOT = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const VERSION = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

async function sh(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeout?: number } = {}) {
  try {
    const r = await run(cmd, args, { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, timeout: opts.timeout ?? 60_000, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

/** Installs the Debian package that provides `tool` when it is missing (the test runs as root). */
function ensureTool(tool: string, pkg: string): void {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0) return;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore', timeout: 240_000 });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', pkg], { env, encoding: 'utf8', timeout: 280_000 });
  if (r.status !== 0) throw new Error(`cannot install ${pkg}: ${r.stderr}`);
}

describe('Debian package', () => {
  let work = '';
  let deb = '';
  let unpacked = '';

  beforeAll(async () => {
    ensureTool('dpkg-deb', 'dpkg');
    ensureTool('systemd-analyze', 'systemd');
    ensureTool('lintian', 'lintian');
    work = await mkdtemp(join(tmpdir(), 'attestd-pkg-'));
    const built = await sh('bash', ['scripts/package.sh', join(work, 'out')], { env: { ATTESTD_PACKAGE_SKIP_BUILD: '1' }, timeout: 120_000 });
    expect(built.code, built.stderr).toBe(0);
    deb = built.stdout.trim();
    unpacked = join(work, 'root');
    expect((await sh('dpkg-deb', ['-x', deb, unpacked])).code).toBe(0);
  }, 600_000);
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('is named and described as a Debian 12 amd64 package with the tpm2-tss and Node dependencies', async () => {
    expect(deb).toBe(join(work, 'out', `attestd_${VERSION}-1_amd64.deb`));
    const field = async (name: string) => (await sh('dpkg-deb', ['-f', deb, name])).stdout.trim();
    expect(await field('Package')).toBe('attestd');
    expect(await field('Version')).toBe(`${VERSION}-1`);
    expect(await field('Architecture')).toBe('amd64');
    const depends = (await field('Depends')).split(/,\s*/);
    for (const dep of ['nodejs (>= 20)', 'adduser', 'libtss2-esys-3.0.2-0 | libtss2-esys0', 'libtss2-tctildr0', 'libtss2-mu0']) expect(depends).toContain(dep);
    expect(depends.some((d) => d.startsWith('libc6 (>= '))).toBe(true);
    const info = await sh('dpkg-deb', ['-I', deb]);
    expect(info.stdout).toMatch(/\bpostinst\b/);
    expect(info.stdout).toMatch(/\bprerm\b/);
    expect(info.stdout).toMatch(/\bpostrm\b/);
    expect((await sh('dpkg-deb', ['-I', deb, 'conffiles'])).stdout.trim()).toBe('/etc/attestd/policy.yaml');
  });

  it('holds the program, its production dependencies, the units, the configuration and the documentation', async () => {
    const list = (await sh('dpkg-deb', ['-c', deb])).stdout.split('\n').map((l) => l.split(/\s+/).slice(5).join(' ')).filter(Boolean);
    const has = (p: string) => list.includes(`./${p}`);
    for (const p of [
      'usr/lib/attestd/dist/daemon/main.js', 'usr/lib/attestd/dist/daemon/cli/attestctl.js', 'usr/lib/attestd/dist/daemon/hooks/oci-hook.js',
      'usr/lib/attestd/build/Release/attestd_native.node', 'usr/lib/attestd/attestd-proc-opener', 'usr/lib/attestd/package.json',
      'usr/lib/attestd/node_modules/protobufjs/package.json', 'usr/lib/attestd/node_modules/koffi/package.json', 'usr/lib/attestd/node_modules/yaml/package.json',
      'usr/bin/attestd', 'usr/bin/attestctl', 'usr/bin/attestd-oci-hook', 'etc/attestd/policy.yaml',
      'lib/systemd/system/attestd.service', 'lib/systemd/system/attestd.socket',
      'usr/share/doc/attestd/copyright', 'usr/share/doc/attestd/changelog.Debian.gz', 'usr/share/man/man8/attestd.8.gz',
    ]) expect(has(p), p).toBe(true);
    // Development dependencies, source maps and other platforms' binaries stay out.
    for (const absent of ['node_modules/vitest/', 'node_modules/typescript/', 'node_modules/fast-check/', '.map', 'musl_x64']) {
      expect(list.filter((p) => p.includes(absent)), absent).toEqual([]);
    }
  });

  it('runs from the unpacked tree alone: the addon, the dependencies and the shipped policy load', async () => {
    const lib = join(unpacked, 'usr/lib/attestd');
    const version = await sh(process.execPath, [join(lib, 'dist/daemon/main.js'), '--version']);
    expect(version.stdout.trim()).toBe(`attestd ${VERSION}`);
    const check = await sh(process.execPath, [join(lib, 'dist/daemon/cli/attestctl.js'), 'policy', 'check', join(unpacked, 'etc/attestd/policy.yaml')]);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    const addon = await sh(process.execPath, ['--input-type=module', '-e',
      `import { sha256 } from ${JSON.stringify(join(lib, 'dist/daemon/native.js'))}; process.stdout.write(sha256(Buffer.from('abc')).toString('hex'))`]);
    expect(addon.stdout, addon.stderr).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    for (const [bin, js] of [['attestd', 'dist/daemon/main.js'], ['attestctl', 'dist/daemon/cli/attestctl.js'], ['attestd-oci-hook', 'dist/daemon/hooks/oci-hook.js']] as const) {
      const wrapper = await readFile(join(unpacked, 'usr/bin', bin), 'utf8');
      expect(wrapper).toBe(`#!/bin/sh\nexec /usr/bin/node /usr/lib/attestd/${js} "$@"\n`);
    }
  });

  it('passes lintian without errors or warnings', async () => {
    const r = await sh('lintian', ['--tag-display-limit', '0', deb], { timeout: 120_000 });
    const tags = r.stdout.split('\n').filter((l) => /^[EW]: /.test(l));
    expect(tags, r.stdout + r.stderr).toEqual([]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  }, 120_000);

  it('has maintainer scripts that parse, and a postinst that creates the users and enables the units', async () => {
    const control = join(work, 'control');
    expect((await sh('dpkg-deb', ['-e', deb, control])).code).toBe(0);
    for (const s of ['postinst', 'prerm', 'postrm']) expect((await sh('sh', ['-n', join(control, s)])).code, s).toBe(0);
    // Stub commands record their arguments; nothing on this machine is changed.
    const stubs = join(work, 'stubs');
    const log = join(work, 'calls.log');
    await mkdir(stubs, { recursive: true });
    for (const cmd of ['adduser', 'addgroup', 'getent', 'deb-systemd-helper', 'deb-systemd-invoke', 'systemctl']) {
      await writeFile(join(stubs, cmd), `#!/bin/sh\necho "${cmd} $*" >> "${log}"\nexit 0\n`);
      await chmod(join(stubs, cmd), 0o755);
    }
    const env = { PATH: `${stubs}:/usr/bin:/bin` };
    expect((await sh('sh', [join(control, 'postinst'), 'configure', ''], { env })).code).toBe(0);
    expect((await sh('sh', [join(control, 'postrm'), 'remove'], { env })).code).toBe(0);
    const calls = (await readFile(log, 'utf8')).trim().split('\n');
    expect(calls).toContain('adduser --system --group --quiet --home /var/lib/attestd --no-create-home --gecos attestd attestation daemon attestd');
    expect(calls).toContain('addgroup --system --quiet attestd-clients');
    expect(calls).toContain('adduser --quiet attestd tss');
    expect(calls).toContain('deb-systemd-helper enable attestd.socket');
    expect(calls).toContain('deb-systemd-helper enable attestd.service');
    expect(calls).toContain('deb-systemd-helper mask attestd.socket attestd.service');
    // "remove" keeps the audit log and the users; only "purge" deletes the state.
    expect(calls.filter((c) => /deluser|delgroup/.test(c))).toEqual([]);
    const postrm = await readFile(join(control, 'postrm'), 'utf8');
    expect(postrm).toMatch(/if \[ "\$1" = purge \]; then[\s\S]*rm -rf \/var\/lib\/attestd/);
  });

  describe('systemd units', () => {
    let unitRoot = '';
    beforeAll(async () => {
      // A root with the package's files, the host's own units (targets the service depends
      // on by default) and stand-ins for /usr/bin/node and /bin/kill, so that `verify` does
      // not depend on where this machine keeps Node.
      unitRoot = join(work, 'unit-root');
      await cp(unpacked, unitRoot, { recursive: true });
      if (existsSync('/lib/systemd/system')) await cp('/lib/systemd/system', join(unitRoot, 'lib/systemd/system'), { recursive: true, force: false, errorOnExist: false });
      for (const p of ['usr/bin/node', 'bin/kill']) {
        await mkdir(join(unitRoot, p, '..'), { recursive: true });
        await writeFile(join(unitRoot, p), '#!/bin/sh\n');
        await chmod(join(unitRoot, p), 0o755);
      }
    });

    it('pass systemd-analyze verify without a complaint', async () => {
      const r = await sh('systemd-analyze', ['verify', `--root=${unitRoot}`, '/lib/systemd/system/attestd.socket', '/lib/systemd/system/attestd.service'], { env: { SYSTEMD_LOG_LEVEL: 'notice' } });
      expect(r.stderr + r.stdout).toBe('');
      expect(r.code).toBe(0);
    });

    it('verify notices a broken unit (the check can fail)', async () => {
      const unit = (await readFile(join(unpacked, 'lib/systemd/system/attestd.service'), 'utf8')).replace('ProtectHome=yes', 'ProtectHome=perhaps');
      await writeFile(join(unitRoot, 'lib/systemd/system/broken.service'), unit);
      const r = await sh('systemd-analyze', ['verify', `--root=${unitRoot}`, '/lib/systemd/system/broken.service']);
      expect(r.stderr).toMatch(/protect home value.*perhaps/);
    });

    it('rate the service\'s exposure at most 0.9 with systemd-analyze security', async () => {
      const r = await sh('systemd-analyze', ['security', '--offline=true', join(unpacked, 'lib/systemd/system/attestd.service')]);
      const m = /Overall exposure level for attestd\.service: (\d+\.\d+) (\w+)/.exec(r.stdout);
      expect(m, r.stdout + r.stderr).not.toBeNull();
      expect(Number(m![1])).toBeLessThanOrEqual(0.9);
      expect(m![2]).toBe('SAFE');
    });

    it('declare the socket, the watchdog, the user and the capability the design needs', async () => {
      const socket = await readFile(join(unpacked, 'lib/systemd/system/attestd.socket'), 'utf8');
      for (const line of ['ListenStream=/run/attestd/attestd.sock', 'SocketMode=0660', 'SocketUser=attestd', 'SocketGroup=attestd-clients', 'RemoveOnStop=yes', 'FileDescriptorName=attestd']) {
        expect(socket.split('\n')).toContain(line);
      }
      const service = (await readFile(join(unpacked, 'lib/systemd/system/attestd.service'), 'utf8')).split('\n');
      for (const line of ['Type=notify', 'NotifyAccess=main', 'WatchdogSec=10s', 'User=attestd', 'SupplementaryGroups=tss', 'CapabilityBoundingSet=CAP_SYS_PTRACE',
        'RestrictAddressFamilies=AF_UNIX', 'DeviceAllow=/dev/tpmrm0 rw', 'ExecReload=/bin/kill -HUP $MAINPID', 'UMask=0077',
        'ExecStart=/usr/lib/attestd/attestd-proc-opener /usr/bin/node /usr/lib/attestd/dist/daemon/main.js --policy /etc/attestd/policy.yaml --state-dir /var/lib/attestd --tcti device:/dev/tpmrm0']) {
        expect(service).toContain(line);
      }
    });
  });
});

describe('Kubernetes manifest', () => {
  it('parses into a namespace, a service account, the policy ConfigMap and a GPU-node DaemonSet', async () => {
    const docs = parseAllDocuments(await readFile(join(ROOT, 'deploy/kubernetes/daemonset.yaml'), 'utf8'));
    for (const d of docs) expect(d.errors).toEqual([]);
    const objs = docs.map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec?: any; data?: Record<string, string> }); // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(objs.map((o) => o.kind)).toEqual(['Namespace', 'ServiceAccount', 'ConfigMap', 'DaemonSet']);
    const ds = objs[3]!.spec.template.spec;
    expect(ds.hostPID).toBe(true);
    expect(ds.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
    expect(ds.tolerations).toContainEqual({ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' });
    const hostPaths = Object.fromEntries((ds.volumes as { name: string; hostPath?: { path: string } }[]).filter((v) => v.hostPath).map((v) => [v.name, v.hostPath!.path]));
    expect(hostPaths).toEqual({ 'socket-dir': '/run/attestd', state: '/var/lib/attestd', tpm: '/dev/tpmrm0' });
    expect(ds.containers[0].args).toContain('--tcti=device:/dev/tpmrm0');
  });

  it('carries a policy that attestctl policy check accepts', async () => {
    const docs = parseAllDocuments(await readFile(join(ROOT, 'deploy/kubernetes/daemonset.yaml'), 'utf8')).map((d) => d.toJS());
    const dir = await mkdtemp(join(tmpdir(), 'attestd-k8s-'));
    try {
      const policy = join(dir, 'policy.yaml');
      await writeFile(policy, (docs[2] as { data: Record<string, string> }).data['policy.yaml']!);
      const r = await sh(process.execPath, [join(ROOT, 'dist/daemon/cli/attestctl.js'), 'policy', 'check', policy]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
