/**
 * Caller identification against real processes that try to be taken for someone else: one
 * that exec()s another program while it is being identified, one whose pid goes to another
 * process before its connection is looked at, one that changes user after connecting; and
 * the bounds of executable hashing (a caller's huge executable neither delays durable
 * writes nor gets hashed past the size limit). Also the lifetime of a connection's pidfd.
 */
import { once } from 'node:events';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { AttestdError } from '../../daemon/base/errors.js';
import { ExeDigestCache, MAX_EXE_BYTES } from '../../daemon/api/exe-digests.js';
import { frameMessage } from '../../daemon/api/framing.js';
import type { ApiContext } from '../../daemon/api/handler.js';
import { identify, peerOf, releasePeer, type Peer } from '../../daemon/api/peer.js';
import { ApiServer } from '../../daemon/api/server.js';
import { attestd } from '../../daemon/gen/proto.js';
import * as native from '../../daemon/native.js';
import { Caller, Listener, paddedCopy, peerHelpers, settle, sha256File, socketFd } from '../helpers/peer-callers.js';
import { blockThreadPool, threadPoolSize } from '../helpers/thread-pool.js';

const MiB = 1024 * 1024;

let dir: string;
let listener: Listener;
let helpers: { a: string; b: string };
const callers: Caller[] = [];
const peers: Peer[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'attestd-peer-'));
  helpers = peerHelpers();
  listener = new Listener(join(dir, 'api.sock'));
  await listener.listen();
});

afterAll(async () => {
  for (const c of callers) await c.stop();
  for (const p of peers) releasePeer(p);
  await listener.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Starts `program connect SOCKET [next]` and returns it with the daemon-side Peer of its connection. */
async function connectCaller(program: string, next?: string): Promise<{ caller: Caller; peer: Peer }> {
  const caller = await Caller.start(program, ['connect', listener.path, ...(next ? [next] : [])]);
  callers.push(caller);
  const peer = peerOf(socketFd(await listener.accept()));
  peers.push(peer);
  return { caller, peer };
}

function expectRefused(outcome: Awaited<ReturnType<typeof settle>>, code: string): void {
  expect(outcome.ok).toBe(false);
  if (!outcome.ok) {
    expect(outcome.error).toBeInstanceOf(AttestdError);
    expect((outcome.error as AttestdError).code).toBe(code);
  }
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('a caller that execs another program while being identified', () => {
  it('never gets the other program\'s digest, and the executable it left is still identified correctly', { timeout: 60_000 }, async () => {
    // The caller starts as `evil` (large enough that hashing it takes a while) and will exec
    // `trusted`, keeping its connection.
    const evil = paddedCopy(helpers.a, join(dir, 'evil'), 192 * MiB);
    const trusted = helpers.b;
    const evilDigest = sha256File(evil);
    const trustedDigest = sha256File(trusted);
    const cache = new ExeDigestCache();
    const { caller, peer } = await connectCaller(evil, trusted);

    // With libuv's pool held, nothing queued on it can run until the exec is done: a hasher
    // that reopened the executable by path on that pool would now find `trusted` there.
    const release = blockThreadPool(dir);
    let outcome;
    try {
      const pending = settle(identify(peer, cache));
      caller.send('x');
      await waitFor(() => readlinkSync(`/proc/${caller.pid}/exe`) === trusted, 'the exec');
      await release();
      outcome = await pending;
    } finally {
      await release();
    }
    if (outcome.ok) {
      // Had it been identified, digest and path must name the same program.
      const { exePath, exeSha256 } = outcome.value;
      expect(exeSha256.toString('hex')).toBe((exePath === evil ? evilDigest : trustedDigest).toString('hex'));
    } else {
      expectRefused(outcome, 'PEER_UNIDENTIFIED');
    }

    // The same process, asked again, is what it runs now.
    const now = await identify(peer, cache);
    expect(now.exePath).toBe(trusted);
    expect(now.exeSha256.toString('hex')).toBe(trustedDigest.toString('hex'));

    // A new process of the executable that was left is identified as that executable: the
    // cache entry for its key holds its own digest.
    const second = await connectCaller(evil);
    const who = await identify(second.peer, cache);
    expect(who.exePath).toBe(evil);
    expect(who.exeSha256.toString('hex')).toBe(evilDigest.toString('hex'));
  });

  it('costs a busy caller one hash', async () => {
    let hashes = 0;
    const cache = new ExeDigestCache(1024, (fd) => {
      hashes++;
      return native.hashExecutable(fd, 'sha256', MAX_EXE_BYTES);
    });
    const { peer } = await connectCaller(helpers.a);
    const all = await Promise.all(Array.from({ length: 20 }, () => identify(peer, cache)));
    all.push(await identify(peer, cache));
    expect(hashes).toBe(1);
    for (const who of all) expect(who.exeSha256.toString('hex')).toBe(sha256File(helpers.a).toString('hex'));
  });
});

/** True if this process may choose the next pid (root in its pid namespace). */
function canSetNextPid(): boolean {
  try {
    writeFileSync('/proc/sys/kernel/ns_last_pid', readFileSync('/proc/sys/kernel/ns_last_pid'));
    return true;
  } catch {
    return false;
  }
}

describe('the process behind a connection', () => {
  it.skipIf(!canSetNextPid())('is the one that connected, not the next holder of its pid', { timeout: 60_000 }, async () => {
    const first = await Caller.start(helpers.a, ['connect', listener.path]);
    callers.push(first);
    const fd = socketFd(await listener.accept());
    first.send('q');
    await first.exited; // and reaped: the pid is free

    // Hand that pid to a new process of the other program.
    let successor: Caller | undefined;
    for (let attempt = 0; attempt < 100 && successor === undefined; attempt++) {
      writeFileSync('/proc/sys/kernel/ns_last_pid', String(first.pid - 1));
      const c = await Caller.start(helpers.b, ['idle']);
      callers.push(c);
      if (c.pid === first.pid) successor = c;
      else await c.stop();
    }
    expect(successor?.pid).toBe(first.pid);

    // The connection is still the first caller's: it is gone, so nobody is identified.
    let peer: Peer;
    try {
      peer = peerOf(fd);
    } catch (err) {
      // Kernels that cannot give a pidfd for an exited peer refuse here instead.
      expect((err as AttestdError).code).toBe('NATIVE_PIDFD_FAILED');
      return;
    }
    peers.push(peer);
    expectRefused(await settle(identify(peer, new ExeDigestCache())), 'PEER_UNIDENTIFIED');
  });

  it.skipIf(process.getuid?.() !== 0)('is refused once its effective uid or gid is no longer the one it connected with', async () => {
    for (const command of ['u', 'g'] as const) {
      const { caller, peer } = await connectCaller(helpers.a);
      const cache = new ExeDigestCache();
      expect((await identify(peer, cache)).uid).toBe(0);
      caller.send(command);
      expect(await caller.nextLine()).toBe('ok');
      expectRefused(await settle(identify(peer, cache)), 'PEER_UNIDENTIFIED');
    }
  });
});

describe('hashing callers\' executables', () => {
  it('never holds up the audit log\'s writes, however large the executables', { timeout: 120_000 }, async () => {
    // More large executables than libuv's pool has threads: hashed there, they would hold
    // every thread and the writes below would wait for the first of them to finish.
    const count = threadPoolSize() + 1;
    const cache = new ExeDigestCache();
    const started = [];
    for (let i = 0; i < count; i++) {
      started.push(await connectCaller(paddedCopy(helpers.a, join(dir, `large-${i}`), 256 * MiB)));
    }
    const events: string[] = [];
    const identified = started.map(({ peer }) =>
      identify(peer, cache).then(
        () => events.push('identified'),
        (err: unknown) => events.push(`refused: ${String(err)}`),
      ),
    );
    const log = await open(join(dir, 'audit.log'), 'a');
    try {
      for (let i = 0; i < 8; i++) {
        await log.appendFile(Buffer.alloc(400, i));
        await log.datasync();
        events.push('durable');
      }
    } finally {
      await log.close();
    }
    await Promise.all(identified);
    expect(events.slice(0, 8)).toEqual(Array(8).fill('durable'));
    expect(events.slice(8)).toEqual(Array(count).fill('identified'));
  });

  it('refuses a caller whose executable is larger than the bound with EXE_TOO_LARGE', async () => {
    const huge = paddedCopy(helpers.a, join(dir, 'huge'), MAX_EXE_BYTES + 1);
    const { peer } = await connectCaller(huge);
    expectRefused(await settle(identify(peer, new ExeDigestCache())), 'EXE_TOO_LARGE');
  });
});

/** Pidfds this process holds. */
function pidfds(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (/pidfd/.test(readlinkSync(`/proc/self/fd/${fd}`))) n++;
    } catch {
      // closed while listing
    }
  }
  return n;
}

describe('a connection\'s pidfd', () => {
  it('stays open while a request of a closed connection is still running', async () => {
    let reached!: () => void;
    const inAcquire = new Promise<void>((resolve) => (reached = resolve));
    let finish!: (err: Error) => void;
    const acquire = new Promise<never>((_, reject) => (finish = reject));
    const ctx = {
      leases: { acquire: () => (reached(), acquire) },
      status: () => ({}),
      verifyToken: () => undefined,
    } as unknown as ApiContext;
    const server = new ApiServer({ socketPath: join(dir, 'server.sock'), log: () => undefined }, ctx);
    await server.listen();
    try {
      const before = pidfds();
      const client = net.connect(join(dir, 'server.sock'));
      await once(client, 'connect');
      client.write(frameMessage(attestd.lease.v1.Request.encode({ id: 1, acquireLease: {} }).finish()));
      await inAcquire;
      expect(pidfds()).toBe(before + 1);

      client.destroy();
      await waitFor(() => server.connectionCount === 0, 'the server to see the close');
      // Closed, but its request is not done: the pidfd is still the connection's.
      expect(pidfds()).toBe(before + 1);

      finish(new AttestdError('NOT_TRUSTED'));
      await waitFor(() => pidfds() === before, 'the pidfd to be released');
    } finally {
      await server.close();
    }
  });
});
