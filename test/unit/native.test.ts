import { execFile, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';

import fc from 'fast-check';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { AttestdError, type ErrorCode } from '../../daemon/base/errors.js';
import { blockThreadPool } from '../helpers/thread-pool.js';
import {
  closeFd,
  createSessionKey,
  hashExecutable,
  hashFile,
  peerCredentials,
  peerPidfd,
  pidfdIsAlive,
  pidfdOpen,
  sha256,
  sha384,
} from '../../daemon/native.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ADDON_PATH = path.join(ROOT, 'build/Release/attestd_native.node');

function expectCode(fn: () => unknown, code: ErrorCode): AttestdError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AttestdError);
    expect((err as AttestdError).code).toBe(code);
    return err as AttestdError;
  }
  throw new Error(`expected ${code} to be thrown`);
}

async function expectRejectCode(promise: Promise<unknown>, code: ErrorCode): Promise<AttestdError> {
  const err: unknown = await promise.then(
    () => new Error(`expected ${code} rejection`),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AttestdError);
  expect((err as AttestdError).code).toBe(code);
  return err as AttestdError;
}

function publicKeyObject(raw: Buffer): crypto.KeyObject {
  return crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attestd-native-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('session key', () => {
  it('makes Ed25519 signatures that node:crypto verifies, and only over the signed bytes', () => {
    const key = createSessionKey();
    const data = Buffer.from('attestd/epoch/v1 test message');
    const sig = key.sign(data);
    const pub = key.publicKey();
    expect(sig).toHaveLength(64);
    expect(pub).toHaveLength(32);
    const verifier = publicKeyObject(pub);
    expect(crypto.verify(null, data, verifier, sig)).toBe(true);

    const changedData = Buffer.from(data);
    changedData[3] = (changedData[3] ?? 0) ^ 0x01;
    expect(crypto.verify(null, changedData, verifier, sig)).toBe(false);
    const changedSig = Buffer.from(sig);
    changedSig[10] = (changedSig[10] ?? 0) ^ 0x80;
    expect(crypto.verify(null, data, verifier, changedSig)).toBe(false);

    // Plain Uint8Array views (offset into a larger buffer) and empty messages work too.
    const backing = new Uint8Array(64).fill(7);
    const view = backing.subarray(5, 40);
    expect(crypto.verify(null, view, verifier, key.sign(view))).toBe(true);
    expect(crypto.verify(null, Buffer.alloc(0), verifier, key.sign(new Uint8Array(0)))).toBe(true);
    key.close();
  });

  it('gives each key its own key pair', () => {
    const a = createSessionKey();
    const b = createSessionKey();
    expect(a.publicKey().equals(b.publicKey())).toBe(false);
    const data = Buffer.from('same message');
    expect(a.sign(data).equals(b.sign(data))).toBe(false);
    expect(crypto.verify(null, data, publicKeyObject(b.publicKey()), a.sign(data))).toBe(false);
    a.close();
    b.close();
  });

  it('refuses to sign or export after close, and close is idempotent', () => {
    const key = createSessionKey();
    key.close();
    key.close();
    const err = expectCode(() => key.sign(Buffer.from('x')), 'NATIVE_KEY_CLOSED');
    expect(err.message).toMatch(/closed/);
    expectCode(() => key.publicKey(), 'NATIVE_KEY_CLOSED');
  });

  it('rejects non-byte data before it reaches the core', () => {
    const key = createSessionKey();
    for (const bad of ['text', 42, null, undefined, [1, 2], new Uint16Array(2), new ArrayBuffer(4)]) {
      expectCode(() => key.sign(bad as unknown as Uint8Array), 'INVALID_ARGUMENT');
    }
    key.close();
  });

  it('keeps key material in the locked, non-dumpable secure heap and releases it on close', () => {
    createSessionKey().close(); // first key sets up the heap and per-thread RNG state
    const before = crypto.secureHeapUsed().used;
    const key = createSessionKey();
    const during = crypto.secureHeapUsed().used;
    expect(during).toBeGreaterThanOrEqual(before + 32);
    key.close();
    expect(crypto.secureHeapUsed().used).toBe(before);

    // OpenSSL's arena: locked (lo) and excluded from core dumps (dd).
    const regions = fs.readFileSync('/proc/self/smaps', 'utf8').split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/);
    const locked = regions.filter((r) => /^VmFlags:.*\blo\b.*\bdd\b/m.test(r) || /^VmFlags:.*\bdd\b.*\blo\b/m.test(r));
    expect(locked.length).toBeGreaterThan(0);
  });

  it('rejects a receiver that is not a tagged key handle', () => {
    createSessionKey().close(); // make sure the addon is loaded with the error class set
    const native = createRequire(import.meta.url)(ADDON_PATH) as {
      SessionKeyHandle: new () => { sign(d: Uint8Array): Buffer; close(): void };
    };
    const handle = new native.SessionKeyHandle();
    const lookalike = Object.create(Object.getPrototypeOf(handle) as object) as typeof handle;
    expectCode(() => handle.sign.call(lookalike, Buffer.from('x')), 'INVALID_ARGUMENT');
    expectCode(() => handle.sign.call({}, Buffer.from('x')), 'INVALID_ARGUMENT');
    expectCode(() => handle.sign.call(new Date(), Buffer.from('x')), 'INVALID_ARGUMENT');
    expect(handle.sign(Buffer.from('x'))).toHaveLength(64);
    handle.close();
  });

  // Without CAP_IPC_LOCK and with RLIMIT_MEMLOCK at 0, mlock of the arena must fail. Root
  // keeps CAP_IPC_LOCK unless setpriv drops it; anyone else lacks it already.
  const hasUtilLinux = spawnSync('prlimit', ['--version']).status === 0 && spawnSync('setpriv', ['--version']).status === 0;
  it.skipIf(!hasUtilLinux)('fails with NATIVE_MEMORY_LOCK_FAILED when memory cannot be locked', () => {
    const script = `
      const a = require(${JSON.stringify(ADDON_PATH)});
      a.setErrorClass(class extends Error { constructor(c, m) { super(m); this.code = c; } });
      const codes = [];
      for (let i = 0; i < 2; i++) { try { new a.SessionKeyHandle(); codes.push('OK'); } catch (e) { codes.push(e.code); } }
      console.log(codes.join(','), require('crypto').secureHeapUsed().used);`;
    const limited = ['prlimit', '--memlock=0', process.execPath, '-e', script];
    const argv = process.getuid?.() === 0 ? ['setpriv', '--bounding-set=-ipc_lock', '--inh-caps=-ipc_lock', ...limited] : limited;
    const run = spawnSync(argv[0] ?? '', argv.slice(1), { encoding: 'utf8', timeout: 20_000 });
    expect(run.stderr).toBe('');
    // Both attempts fail, and the unlocked arena was taken down again (nothing in use).
    expect(run.stdout.trim()).toBe('NATIVE_MEMORY_LOCK_FAILED,NATIVE_MEMORY_LOCK_FAILED 0');
  });

  it('reports an exhausted secure heap as NATIVE_MEMORY_LOCK_FAILED, and recovers after close', () => {
    // In a child process: filling the heap here would starve this process's node:crypto.
    const script = `
      const a = require(${JSON.stringify(ADDON_PATH)});
      a.setErrorClass(class extends Error { constructor(c, m) { super(m); this.code = c; } });
      const keys = [];
      let code = 'NONE';
      for (let i = 0; i < 200000; i++) {
        try { keys.push(new a.SessionKeyHandle()); } catch (e) { code = e.code; break; }
      }
      for (const k of keys) k.close();
      const again = new a.SessionKeyHandle();
      console.log(code, keys.length > 1000, again.sign(Buffer.from('x')).length);`;
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 25_000 });
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('NATIVE_MEMORY_LOCK_FAILED true 64');
  });

  it('frees live keys when a worker thread exits', async () => {
    const worker = new Worker(
      `const a = require(${JSON.stringify(ADDON_PATH)});
       a.setErrorClass(class extends Error {});
       const keys = [new a.SessionKeyHandle(), new a.SessionKeyHandle()];
       require('worker_threads').parentPort.postMessage(keys[0].sign(Buffer.from('w')).length);`,
      { eval: true },
    );
    const [length] = (await once(worker, 'message')) as [number];
    expect(length).toBe(64);
    const [exitCode] = (await once(worker, 'exit')) as [number];
    expect(exitCode).toBe(0);
  });

  it('signs about as fast as node:crypto with a KeyObject (informational)', () => {
    const key = createSessionKey();
    const { privateKey } = crypto.generateKeyPairSync('ed25519');
    const data = Buffer.alloc(256, 1);
    const rounds = 2000;
    let t = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) key.sign(data);
    const nativeNs = Number(process.hrtime.bigint() - t) / rounds;
    t = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) crypto.sign(null, data, privateKey);
    const nodeNs = Number(process.hrtime.bigint() - t) / rounds;
    console.info(`Ed25519 sign: native ${(nativeNs / 1000).toFixed(1)} us, node:crypto ${(nodeNs / 1000).toFixed(1)} us`);
    expect(crypto.verify(null, data, publicKeyObject(key.publicKey()), key.sign(data))).toBe(true);
    key.close();
  });
});

describe('hashing', () => {
  const nodeHash = (alg: string, data: Uint8Array): Buffer => crypto.createHash(alg).update(data).digest();

  it('hashes buffers like node:crypto', () => {
    for (const data of [Buffer.alloc(0), Buffer.from('abc'), crypto.randomBytes(100_000)]) {
      expect(sha256(data).equals(nodeHash('sha256', data))).toBe(true);
      expect(sha384(data).equals(nodeHash('sha384', data))).toBe(true);
    }
    expect(sha256(Buffer.from('abc')).toString('hex')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expectCode(() => sha256('abc' as unknown as Uint8Array), 'INVALID_ARGUMENT');
    expectCode(() => sha384(new Int8Array(3) as unknown as Uint8Array), 'INVALID_ARGUMENT');
  });

  it('property: sha256 and sha384 agree with node:crypto on any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => {
        expect(sha256(bytes).equals(nodeHash('sha256', bytes))).toBe(true);
        expect(sha384(bytes).equals(nodeHash('sha384', bytes))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('hashes a file larger than one read chunk, and an empty file', async () => {
    const big = crypto.randomBytes(3 * 1024 * 1024 + 7);
    const bigPath = path.join(tmp, 'big.bin');
    fs.writeFileSync(bigPath, big);
    expect((await hashFile(bigPath, 'sha256')).equals(nodeHash('sha256', big))).toBe(true);
    expect((await hashFile(bigPath, 'sha384')).equals(nodeHash('sha384', big))).toBe(true);

    const emptyPath = path.join(tmp, 'empty.bin');
    fs.writeFileSync(emptyPath, '');
    expect((await hashFile(emptyPath, 'sha256')).equals(nodeHash('sha256', Buffer.alloc(0)))).toBe(true);
  });

  it('follows links, as /proc/<pid>/exe needs', async () => {
    const target = path.join(tmp, 'target.bin');
    fs.writeFileSync(target, 'linked content');
    const link = path.join(tmp, 'link.bin');
    fs.symlinkSync(target, link);
    expect((await hashFile(link, 'sha256')).equals(nodeHash('sha256', Buffer.from('linked content')))).toBe(true);

    const exe = fs.readFileSync(process.execPath);
    expect((await hashFile('/proc/self/exe', 'sha256')).equals(nodeHash('sha256', exe))).toBe(true);
  });

  it('rejects with NATIVE_IO_FAILED and the errno name', async () => {
    const missing = await expectRejectCode(hashFile(path.join(tmp, 'missing'), 'sha256'), 'NATIVE_IO_FAILED');
    expect(missing.message).toContain('ENOENT');
    // Directories and devices are not regular files; /dev/zero would never end.
    await expectRejectCode(hashFile(tmp, 'sha256'), 'NATIVE_IO_FAILED');
    const device = await expectRejectCode(hashFile('/dev/zero', 'sha384'), 'NATIVE_IO_FAILED');
    expect(device.message).toContain('not a regular file');
  });

  it('rejects bad arguments with INVALID_ARGUMENT', async () => {
    await expectRejectCode(hashFile('', 'sha256'), 'INVALID_ARGUMENT');
    await expectRejectCode(hashFile('a\0b', 'sha256'), 'INVALID_ARGUMENT');
    await expectRejectCode(hashFile('/etc/hostname', 'md5' as 'sha256'), 'INVALID_ARGUMENT');
    await expectRejectCode(hashFile(7 as unknown as string, 'sha256'), 'INVALID_ARGUMENT');
  });
});

describe('executable hashing', () => {
  const nodeHash = (alg: string, data: Uint8Array): Buffer => crypto.createHash(alg).update(data).digest();
  const MiB = 1024 * 1024;

  /** A file of `size` bytes: `head`, then a hole (reads as zeros, takes no disk). */
  function sparseFile(name: string, head: Buffer, size: number): string {
    const p = path.join(tmp, name);
    fs.writeFileSync(p, head);
    fs.truncateSync(p, size);
    return p;
  }

  it('hashes the file open on a descriptor, says which version it read, and leaves the offset alone', async () => {
    const data = crypto.randomBytes(3 * MiB + 7);
    const p = path.join(tmp, 'exe.bin');
    fs.writeFileSync(p, data);
    const fd = fs.openSync(p, 'r');
    try {
      const r256 = await hashExecutable(fd, 'sha256', 4 * MiB);
      expect(r256.digest.equals(nodeHash('sha256', data))).toBe(true);
      const st = fs.fstatSync(fd, { bigint: true });
      expect({ dev: r256.dev, ino: r256.ino, size: r256.size, mtimeNs: r256.mtimeNs, ctimeNs: r256.ctimeNs }).toEqual({
        dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs,
      });
      expect((await hashExecutable(fd, 'sha384', data.length)).digest.equals(nodeHash('sha384', data))).toBe(true);
      // Positional reads: the descriptor's own offset is where it was.
      const first = Buffer.alloc(16);
      fs.readSync(fd, first, 0, 16, null);
      expect(first.equals(data.subarray(0, 16))).toBe(true);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('hashes a duplicate: the caller may close its descriptor as soon as the call returns', async () => {
    const p = path.join(tmp, 'closed-early.bin');
    fs.writeFileSync(p, 'closed early');
    const fd = fs.openSync(p, 'r');
    const pending = hashExecutable(fd, 'sha256', MiB);
    fs.closeSync(fd);
    // The number may be handed to another file at once; the digest is still of the first.
    const other = fs.openSync(path.join(tmp, 'exe.bin'), 'r');
    try {
      expect((await pending).digest.equals(nodeHash('sha256', Buffer.from('closed early')))).toBe(true);
    } finally {
      fs.closeSync(other);
    }
  });

  it('refuses a file larger than the bound with EXE_TOO_LARGE, before reading it', async () => {
    const p = sparseFile('huge.bin', Buffer.from('\x7fELF'), 64 * 1024 * MiB);
    const fd = fs.openSync(p, 'r');
    try {
      const t = process.hrtime.bigint();
      const err = await expectRejectCode(hashExecutable(fd, 'sha256', 512 * MiB), 'EXE_TOO_LARGE');
      expect(err.message).toContain(String(64 * 1024 * MiB));
      // 64 GiB were not read: hashing them would take a minute, not a moment.
      expect(Number(process.hrtime.bigint() - t) / 1e9).toBeLessThan(10);
      // The bound is inclusive.
      const small = fs.openSync(sparseFile('bound.bin', Buffer.from('x'), MiB), 'r');
      try {
        expect((await hashExecutable(small, 'sha256', MiB)).size).toBe(BigInt(MiB));
        await expectRejectCode(hashExecutable(small, 'sha256', MiB - 1), 'EXE_TOO_LARGE');
      } finally {
        fs.closeSync(small);
      }
    } finally {
      fs.closeSync(fd);
    }
  });

  it('refuses what is not a regular file, and bad arguments', async () => {
    for (const p of [tmp, '/dev/zero']) {
      const fd = fs.openSync(p, 'r');
      try {
        const err = await expectRejectCode(hashExecutable(fd, 'sha256', MiB), 'NATIVE_IO_FAILED');
        expect(err.message).toContain('not a regular file');
      } finally {
        fs.closeSync(fd);
      }
    }
    const closed = fs.openSync(path.join(tmp, 'exe.bin'), 'r');
    fs.closeSync(closed);
    expect((await expectRejectCode(hashExecutable(closed, 'sha256', MiB), 'NATIVE_IO_FAILED')).message).toContain('EBADF');
    for (const [fd, alg, max] of [[-1, 'sha256', 1], [1.5, 'sha256', 1], [0, 'md5', 1], [0, 'sha256', -1], [0, 'sha256', 2 ** 53], [0, 'sha256', 0.5]]) {
      await expectRejectCode(hashExecutable(fd as number, alg as 'sha256', max as number), 'INVALID_ARGUMENT');
    }
  });

  it('runs on its own threads: it finishes while every thread of libuv\'s pool is blocked', async () => {
    const data = crypto.randomBytes(2 * MiB);
    const p = path.join(tmp, 'own-thread.bin');
    fs.writeFileSync(p, data);
    const fd = fs.openSync(p, 'r');
    const release = blockThreadPool(tmp);
    let probed = false;
    const probe = fs.promises.stat(p).then(() => {
      probed = true;
    });
    try {
      const outcome = await Promise.race([
        hashExecutable(fd, 'sha256', 4 * MiB),
        promisify(setTimeout)(20_000).then(() => 'timed out' as const),
      ]);
      expect(outcome).not.toBe('timed out');
      expect(outcome !== 'timed out' && outcome.digest.equals(nodeHash('sha256', data))).toBe(true);
      // The pool really was blocked all along: a stat queued on it is still waiting.
      expect(probed).toBe(false);
    } finally {
      await release();
      fs.closeSync(fd);
    }
    await probe;
    expect(probed).toBe(true);
  });

  it('keeps the process alive while hashing, lets it exit when idle, and survives a worker torn down mid-hash', async () => {
    const big = sparseFile('worker.bin', Buffer.from('w'), 256 * MiB);
    const script = `
      const fs = require('fs');
      const a = require(${JSON.stringify(ADDON_PATH)});
      a.setErrorClass(class extends Error { constructor(c, m) { super(m); this.code = c; } });
      const fd = fs.openSync(${JSON.stringify(big)}, 'r');
      a.hashExecutable(fd, 'sha256', 1 << 30).then((r) => console.log(r.digest.length, String(r.size)));
      fs.closeSync(fd);`;
    // Nothing else keeps this process alive: the pending hash must, and then let it go.
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { timeout: 25_000 });
    expect(stdout.trim()).toBe(`32 ${256 * MiB}`);

    const worker = new Worker(`${script}\nrequire('worker_threads').parentPort.postMessage('started');`, { eval: true });
    await once(worker, 'message');
    // Torn down with the hash running: its threads are cancelled and joined, the result dropped.
    expect(await worker.terminate()).toBe(1);
    const fd = fs.openSync(big, 'r');
    try {
      expect((await hashExecutable(fd, 'sha256', 1 << 30)).size).toBe(BigInt(256 * MiB));
    } finally {
      fs.closeSync(fd);
    }
  });
});

/** A Unix socket connection to this process: the server side's descriptor, and how to close it all. */
async function connectedPair(name: string): Promise<{ fd: number; close: () => void }> {
  const server = net.createServer();
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  server.listen(path.join(tmp, name));
  await once(server, 'listening');
  const client = net.connect(path.join(tmp, name));
  await once(client, 'connect');
  const serverSide = await accepted;
  return {
    fd: (serverSide as unknown as { _handle: { fd: number } })._handle.fd,
    close: () => {
      client.destroy();
      serverSide.destroy();
      server.close();
    },
  };
}

describe('peer credentials and pidfds', () => {
  it('reads the peer of a connected Unix socket', async () => {
    const pair = await connectedPair('peer.sock');
    try {
      expect(pair.fd).toBeGreaterThan(2);
      expect(peerCredentials(pair.fd)).toEqual({ pid: process.pid, uid: process.getuid?.(), gid: process.getgid?.() });
    } finally {
      pair.close();
    }
  });

  it('fails with NATIVE_PEERCRED_FAILED on a descriptor that is not a socket', () => {
    const fd = fs.openSync(path.join(tmp, 'plain'), 'w');
    try {
      const err = expectCode(() => peerCredentials(fd), 'NATIVE_PEERCRED_FAILED');
      expect(err.message).toContain('ENOTSOCK');
    } finally {
      fs.closeSync(fd);
    }
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 31, '3']) {
      expectCode(() => peerCredentials(bad as number), 'INVALID_ARGUMENT');
    }
  });

  it('takes a pidfd for the process that connected from the socket itself', async () => {
    const pair = await connectedPair('peerpidfd.sock');
    try {
      const pidfd = peerPidfd(pair.fd);
      if (pidfd === undefined) return; // a kernel before 6.5: peer.ts falls back to pidfdOpen
      try {
        const info = fs.readFileSync(`/proc/self/fdinfo/${pidfd}`, 'utf8');
        expect(info).toMatch(new RegExp(`^Pid:\\s+${process.pid}$`, 'm'));
        // Close-on-exec (O_CLOEXEC is 02000000 in the octal flags).
        expect(Number.parseInt(/^flags:\s+([0-7]+)$/m.exec(info)![1]!, 8) & 0o2000000).not.toBe(0);
        expect(pidfdIsAlive(pidfd)).toBe(true);
      } finally {
        closeFd(pidfd);
      }
      expectCode(() => pidfdIsAlive(pidfd), 'INVALID_ARGUMENT');
    } finally {
      pair.close();
    }
    const plain = fs.openSync(path.join(tmp, 'plain-pidfd'), 'w');
    try {
      expect(expectCode(() => peerPidfd(plain), 'NATIVE_PIDFD_FAILED').message).toContain('ENOTSOCK');
    } finally {
      fs.closeSync(plain);
    }
    expectCode(() => peerPidfd(-1), 'INVALID_ARGUMENT');
  });

  it('sees this process alive through a pidfd', () => {
    const fd = pidfdOpen(process.pid);
    expect(pidfdIsAlive(fd)).toBe(true);
    closeFd(fd);
    // Once closed, the number is no longer ours to touch.
    expectCode(() => closeFd(fd), 'INVALID_ARGUMENT');
    expectCode(() => pidfdIsAlive(fd), 'INVALID_ARGUMENT');
    expectCode(() => pidfdIsAlive(0), 'INVALID_ARGUMENT');
    expectCode(() => pidfdOpen(0), 'INVALID_ARGUMENT');
  });

  it('reports a child that has exited as not alive', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 200)'], { stdio: 'ignore' });
    const pid = child.pid;
    if (pid === undefined) throw new Error('spawn failed');
    const fd = pidfdOpen(pid);
    try {
      expect(pidfdIsAlive(fd)).toBe(true);
      await once(child, 'exit');
      expect(pidfdIsAlive(fd)).toBe(false);
    } finally {
      closeFd(fd);
    }
    // Reaped: the pid no longer names a process.
    expectCode(() => pidfdOpen(pid), 'NATIVE_PIDFD_FAILED');
  });

  it('reports an exited but unreaped process (a zombie) as not alive', async () => {
    // The shell backgrounds a short sleep, then execs a long one, which never reaps it. The
    // child outlives the exec so the shell cannot reap it first.
    const parent = spawn('sh', ['-c', 'sleep 0.2 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const [chunk] = (await once(parent.stdout, 'data')) as [Buffer];
      const zombie = Number.parseInt(chunk.toString('utf8'), 10);
      const fd = pidfdOpen(zombie);
      try {
        const deadline = Date.now() + 5000;
        while (!/\) Z /.test(fs.readFileSync(`/proc/${zombie}/stat`, 'utf8')) && Date.now() < deadline) {
          await promisify(setTimeout)(10);
        }
        expect(fs.readFileSync(`/proc/${zombie}/stat`, 'utf8')).toMatch(/\) Z /);
        expect(pidfdIsAlive(fd)).toBe(false);
      } finally {
        closeFd(fd);
      }
    } finally {
      parent.kill();
    }
  });
});

/** native.ts and the one module it imports, compiled into PKG/dist/daemon/ as the build lays them out. */
function compileLoader(pkg: string): void {
  for (const name of ['native', 'base/errors']) {
    const source = fs.readFileSync(path.join(ROOT, `daemon/${name}.ts`), 'utf8');
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.NodeNext, target: ts.ScriptTarget.ES2022 },
      fileName: `${path.basename(name)}.mts`,
    });
    fs.mkdirSync(path.dirname(path.join(pkg, `dist/daemon/${name}.js`)), { recursive: true });
    fs.writeFileSync(path.join(pkg, `dist/daemon/${name}.js`), outputText);
  }
}

describe('loading', () => {
  it('finds the addon from the compiled layout (dist/daemon/native.js) too', async () => {
    // Mimic an installed package: package.json, build/Release/, and dist/daemon/ one level
    // deeper than the source tree, so the loader has to walk up rather than count.
    const pkg = path.join(tmp, 'pkg');
    fs.mkdirSync(path.join(pkg, 'build/Release'), { recursive: true });
    fs.mkdirSync(path.join(pkg, 'dist/daemon'), { recursive: true });
    fs.writeFileSync(path.join(pkg, 'package.json'), '{"type":"module"}');
    fs.symlinkSync(ADDON_PATH, path.join(pkg, 'build/Release/attestd_native.node'));
    compileLoader(pkg);
    const script = `import { sha256 } from ${JSON.stringify(path.join(pkg, 'dist/daemon/native.js'))};
      console.log(sha256(Buffer.from('abc')).toString('hex'));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      timeout: 20_000,
    });
    expect(stdout.trim()).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('reports NATIVE_UNAVAILABLE with the cause when the addon is missing', async () => {
    const pkg = path.join(tmp, 'nobuild');
    fs.mkdirSync(path.join(pkg, 'dist/daemon'), { recursive: true });
    fs.writeFileSync(path.join(pkg, 'package.json'), '{"type":"module"}');
    compileLoader(pkg);
    const script = `import { sha256 } from ${JSON.stringify(path.join(pkg, 'dist/daemon/native.js'))};
      try { sha256(Buffer.alloc(1)); } catch (e) { console.log(e.name, e.code, e.cause?.code); }`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      timeout: 20_000,
    });
    expect(stdout.trim()).toBe('AttestdError NATIVE_UNAVAILABLE MODULE_NOT_FOUND');
  });
});
