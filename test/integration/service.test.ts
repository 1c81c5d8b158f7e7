/**
 * attestd as a systemd service: sd_notify (READY, STATUS, WATCHDOG only while the attestation
 * loop runs, STOPPING), socket activation, the metrics endpoint, and the config file.
 */
import { describe, it, expect } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSwtpm, tpm2 } from '../helpers/swtpm.js';
import { DAEMON, State, testPolicy } from '../helpers/daemon.js';
import { AttestdClient } from '../../daemon/client/client.js';

/** A Unix datagram receiver (Node has none): a python3 child printing each datagram as one JSON line. */
function notifyReceiver(path: string): { proc: ChildProcess; messages: string[]; ready: Promise<void> } {
  // "@name" is an abstract socket, as systemd names them in NOTIFY_SOCKET.
  const code = 'import socket,sys,json\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\np=sys.argv[1]\n' +
    's.bind("\\0"+p[1:] if p.startswith("@") else p)\nprint("ready",flush=True)\n' +
    'while True:\n  m=s.recv(65536)\n  print(json.dumps(m.decode()),flush=True)\n';
  const proc = spawn('python3', ['-c', code, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const messages: string[] = [];
  let buf = '';
  let ready!: () => void;
  const readyP = new Promise<void>((r) => (ready = r));
  proc.stdout!.on('data', (d) => {
    buf += d;
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) {
      if (l === 'ready') ready();
      else messages.push(JSON.parse(l) as string);
    }
  });
  return { proc, messages, ready: readyP };
}

async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function status(socket: string) {
  const c = await AttestdClient.connect(socket);
  try {
    return (await c.call({ getStatus: {} })).getStatus!;
  } finally {
    c.close();
  }
}

describe('systemd integration', () => {
  it('notifies READY after the first appraisal, pets the watchdog only while the loop runs, and says STOPPING', async () => {
    const tpm = await startSwtpm();
    const dir = await mkdtemp(join(tmpdir(), 'attestd-svc-'));
    const notifyPath = join(dir, 'notify.sock');
    const rx = notifyReceiver(notifyPath);
    await rx.ready;
    await writeFile(join(dir, 'policy.yaml'), testPolicy({ interval: '500ms', maxAge: '1s' }));
    const d = spawn(process.execPath, [DAEMON, '--tcti', tpm.tcti, '--policy', join(dir, 'policy.yaml'), '--state-dir', join(dir, 'state'),
      '--socket', join(dir, 'a.sock')], { env: { ...process.env, NOTIFY_SOCKET: notifyPath, WATCHDOG_USEC: '300000' }, stdio: 'ignore' });
    try {
      await until(() => rx.messages.some((m) => m.startsWith('READY=1')), 10_000, 'READY=1');
      expect(rx.messages.find((m) => m.startsWith('READY=1'))).toMatch(/STATUS=(TRUSTED|STARTING) epoch 1/);
      await until(() => rx.messages.filter((m) => m === 'WATCHDOG=1').length >= 3, 5000, 'watchdog');
      expect(rx.messages.some((m) => /^STATUS=TRUSTED epoch \d+$/.test(m))).toBe(true);
      // A TPM that hangs (stopped, not dead) stalls the loop: the watchdog must stop.
      process.kill(tpm.pid(), 'SIGSTOP');
      await new Promise((r) => setTimeout(r, 2500));
      const count = rx.messages.filter((m) => m === 'WATCHDOG=1').length;
      await new Promise((r) => setTimeout(r, 800));
      expect(rx.messages.filter((m) => m === 'WATCHDOG=1').length).toBe(count);
      process.kill(tpm.pid(), 'SIGCONT');
      await until(() => rx.messages.filter((m) => m === 'WATCHDOG=1').length > count, 5000, 'watchdog after the TPM resumed');
      d.kill('SIGTERM');
      await until(() => rx.messages.includes('STOPPING=1'), 5000, 'STOPPING=1');
    } finally {
      d.kill('SIGKILL');
      rx.proc.kill();
      await tpm.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('serves on a socket handed over by socket activation, exposes metrics, and reads a config file', async () => {
    const tpm = await startSwtpm();
    const dir = await mkdtemp(join(tmpdir(), 'attestd-act-'));
    const sock = join(dir, 'activated.sock');
    const port = 20000 + Math.floor(Math.random() * 20000);
    await writeFile(join(dir, 'policy.yaml'), testPolicy());
    await writeFile(join(dir, 'config.yaml'), `tcti: "${tpm.tcti}"\npolicy: "${join(dir, 'policy.yaml')}"\nstate_dir: "${join(dir, 'state')}"\n` +
      `socket: "${join(dir, 'unused.sock')}"\nmetrics: "127.0.0.1:${port}"\n`);
    // What systemd does: bind and listen, put the socket at fd 3, set LISTEN_* for the pid that
    // then execs the daemon.
    const activator = 'import os,socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_STREAM)\ns.bind(sys.argv[1])\ns.listen(64)\n' +
      'os.dup2(s.fileno(),3)\nos.set_inheritable(3,True)\nos.environ.update(LISTEN_PID=str(os.getpid()),LISTEN_FDS="1",LISTEN_FDNAMES="attestd")\n' +
      'os.execv(sys.argv[2],sys.argv[2:])\n';
    const d = spawn('python3', ['-c', activator, sock, process.execPath, DAEMON, '--config', join(dir, 'config.yaml')], { stdio: 'ignore' });
    try {
      let s;
      const end = Date.now() + 10_000;
      while (Date.now() < end) {
        s = await status(sock).catch(() => undefined);
        if (s?.state === State.TRUSTED) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(s?.state).toBe(State.TRUSTED);
      expect(existsSync(join(dir, 'unused.sock'))).toBe(false);
      const c = await AttestdClient.connect(sock);
      await c.call({ acquireLease: {} });
      await expect(c.call({ acquireLease: { rule: 'nope' } })).rejects.toMatchObject({ code: 'NO_MATCHING_RULE' });
      c.close();
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(text).toContain('attestd_state{state="TRUSTED"} 1');
      expect(text).toMatch(/attestd_lease_decisions_total\{outcome="granted",reason=""\} 1/);
      expect(text).toMatch(/attestd_lease_decisions_total\{outcome="denied",reason="NO_MATCHING_RULE"\} 1/);
      expect(text).toMatch(/attestd_active_leases 1/);
      expect(text).toMatch(/attestd_evidence_source_up\{source="tpm"\} 1/);
      expect(text).toMatch(/attestd_appraisal_duration_seconds_count\{result="pass"\} \d+/);
      expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
    } finally {
      d.kill('SIGKILL');
      await tpm.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a config file with an unknown setting, naming file and line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'attestd-cfg-'));
    await writeFile(join(dir, 'config.yaml'), 'tcti: "swtpm:path=/x"\nsoket: "/tmp/x"\n');
    const d = spawn(process.execPath, [DAEMON, '--config', join(dir, 'config.yaml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    d.stderr!.on('data', (b) => (err += b));
    const code = await new Promise((r) => d.on('exit', r));
    expect(code).toBe(2);
    expect(err).toContain('config.yaml:2:1: unknown setting "soket"');
    await rm(dir, { recursive: true, force: true });
  });

  it('sends its notifications to an abstract NOTIFY_SOCKET too', async () => {
    const tpm = await startSwtpm();
    const dir = await mkdtemp(join(tmpdir(), 'attestd-abs-'));
    const name = `@attestd-test-${process.pid}-${Date.now()}`;
    const rx = notifyReceiver(name);
    await rx.ready;
    await writeFile(join(dir, 'policy.yaml'), testPolicy());
    const d = spawn(process.execPath, [DAEMON, '--tcti', tpm.tcti, '--policy', join(dir, 'policy.yaml'), '--state-dir', join(dir, 'state'),
      '--socket', join(dir, 'a.sock')], { env: { ...process.env, NOTIFY_SOCKET: name }, stdio: 'ignore' });
    try {
      await until(() => rx.messages.some((m) => m.startsWith('READY=1')), 10_000, 'READY=1 on the abstract socket');
      d.kill('SIGTERM');
      await until(() => rx.messages.includes('STOPPING=1'), 5000, 'STOPPING=1');
    } finally {
      d.kill('SIGKILL');
      rx.proc.kill();
      await tpm.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('serves leases under systemd-socket-activate, and its metrics follow a drift', async () => {
    const tpm = await startSwtpm();
    const dir = await mkdtemp(join(tmpdir(), 'attestd-ssa-'));
    const sock = join(dir, 'activated.sock');
    const port = 20000 + Math.floor(Math.random() * 20000);
    await writeFile(join(dir, 'policy.yaml'), testPolicy());
    const d = spawn('systemd-socket-activate', ['-l', sock, '--fdname=attestd', process.execPath, DAEMON, '--tcti', tpm.tcti,
      '--policy', join(dir, 'policy.yaml'), '--state-dir', join(dir, 'state'), '--socket', join(dir, 'unused.sock'),
      '--metrics', `127.0.0.1:${port}`], { stdio: 'ignore' });
    try {
      await until(() => existsSync(sock), 5000, 'the activation socket');
      // The first connection starts the daemon, which then answers on the socket it was handed.
      let s;
      const end = Date.now() + 15_000;
      while (Date.now() < end) {
        s = await status(sock).catch(() => undefined);
        if (s?.state === State.TRUSTED) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(s?.state).toBe(State.TRUSTED);
      expect(existsSync(join(dir, 'unused.sock'))).toBe(false);
      const c = await AttestdClient.connect(sock);
      await c.call({ acquireLease: {} });
      const scrape = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const before = await scrape();
      expect(before).toContain('attestd_state{state="TRUSTED"} 1');
      expect(before).toMatch(/attestd_active_leases 1/);
      expect((await tpm2(['pcrextend', `16:sha256=${'33'.repeat(32)}`], tpm.tcti)).code).toBe(0);
      const endDrift = Date.now() + 5000;
      let after = '';
      while (Date.now() < endDrift) {
        after = await scrape();
        if (after.includes('attestd_state{state="UNTRUSTED"} 1')) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(after).toContain('attestd_state{state="UNTRUSTED"} 1');
      expect(after).toContain('attestd_state{state="TRUSTED"} 0');
      expect(after).toMatch(/attestd_active_leases 0/);
      expect(after).toMatch(/attestd_lease_decisions_total\{outcome="revoked",reason="NOT_TRUSTED"\} 1/);
      expect(after).toMatch(/attestd_appraisal_duration_seconds_count\{result="fail"\} [1-9]/);
      c.close();
    } finally {
      d.kill('SIGKILL');
      await tpm.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
