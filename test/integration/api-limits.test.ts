/**
 * Hostile clients that try to take the host down through the API's resources rather than its
 * parsing: one that pipelines requests and never reads the answers, one that trickles a frame
 * byte by byte, one that sits idle, and one uid that opens connection after connection. Beside
 * each, a well-behaved client keeps getting leases and the host stays TRUSTED.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import net from 'node:net';
import { once } from 'node:events';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leaseRoundTrip, sharedDaemon, State, testPolicy, runToEnd } from '../helpers/daemon.js';
import { frameMessage, FrameDecoder } from '../../daemon/api/framing.js';
import { ApiServer } from '../../daemon/api/server.js';
import type { ApiContext } from '../../daemon/api/handler.js';
import { attestd } from '../../daemon/gen/proto.js';

const req = (r: attestd.lease.v1.Request.$Properties) => frameMessage(attestd.lease.v1.Request.encode(r).finish());
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = 1024 * 1024;

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}


async function connect(path: string): Promise<net.Socket> {
  const s = net.connect(path);
  s.on('error', () => undefined);
  await once(s, 'connect');
  return s;
}

describe('against the daemon', () => {
  const env = sharedDaemon(testPolicy({ ttl: '30s' }));

  it('stops reading a client that never reads its answers; its memory stays bounded', async () => {
    const d = env().d;
    await leaseRoundTrip(d);
    const before = rssOf(d.proc.pid!);
    const hostile = await connect(d.socket);
    hostile.pause(); // never reads a byte of the answers
    // 400,000 pipelined GetStatus requests, about 4 MiB, written at once.
    const frames: Buffer[] = [];
    for (let i = 1; i <= 400_000; i++) frames.push(req({ id: i, getStatus: {} }));
    hostile.write(Buffer.concat(frames));
    const end = Date.now() + 4000;
    while (Date.now() < end) {
      await leaseRoundTrip(d);
      expect((await d.status()).state).toBe(State.TRUSTED);
      await sleep(100);
    }
    const grown = rssOf(d.proc.pid!) - before;
    expect(grown).toBeLessThan(48 * MiB);
    hostile.destroy();
    expect(d.proc.exitCode).toBeNull();
  }, 30_000);

  it('drops a client that trickles a frame at the deadline from its first byte', async () => {
    const d = env().d;
    const slow = await connect(d.socket);
    let closedAt: number | undefined;
    slow.on('close', () => (closedAt = Date.now()));
    // A 200-byte frame at one byte per 100 ms would take 20 s; the deadline is 10 s.
    const frame = req({ id: 1, renewLease: { leaseId: 'a'.repeat(190) } });
    expect(frame.length).toBeGreaterThan(150);
    const started = Date.now();
    let i = 0;
    const trickle = setInterval(() => {
      if (closedAt !== undefined || i >= frame.length) return;
      slow.write(frame.subarray(i, i + 1));
      i++;
    }, 100);
    try {
      while (closedAt === undefined && Date.now() - started < 16_000) {
        await leaseRoundTrip(d);
        await sleep(200);
      }
    } finally {
      clearInterval(trickle);
      slow.destroy();
    }
    expect(closedAt).toBeDefined();
    const after = closedAt! - started;
    expect(after).toBeGreaterThanOrEqual(9_500);
    expect(after).toBeLessThan(12_500);
    expect(i).toBeLessThan(frame.length);
    expect((await d.status()).state).toBe(State.TRUSTED);
  }, 30_000);
});

describe('connections per uid', () => {
  const NOBODY = 65534;
  const env = sharedDaemon(testPolicy().replace(/uids: \[(\d+)\]/, `uids: [$1, ${NOBODY}]`));

  /** Runs the client library as another uid: connect, acquire a lease, print its id. */
  async function leaseAsNobody(socket: string): Promise<string> {
    const client = join(import.meta.dirname, '../../dist/daemon/client/client.js');
    const script = `import { AttestdClient } from ${JSON.stringify(client)};
const c = await AttestdClient.connect(${JSON.stringify(socket)});
const r = await c.call({ acquireLease: {} });
console.log(r.acquireLease.lease.leaseId);
c.close();`;
    const r = await runToEnd('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath,
      '--input-type=module', '-e', script], { cwd: '/' });
    if (r.code !== 0) throw new Error(`client as nobody failed (${r.code}): ${r.stderr}`);
    return r.stdout.trim();
  }

  it('refuses one uid past its cap at accept, while another uid still connects and gets a lease', async () => {
    const d = env().d;
    await chmod(d.dir, 0o755);
    await chmod(d.socket, 0o666);
    const held: net.Socket[] = [];
    try {
      // Root holds 128 connections, each proven served by an answer.
      for (let i = 0; i < 128; i++) {
        const s = await connect(d.socket);
        held.push(s);
        const dec = new FrameDecoder();
        const answered = new Promise<void>((resolve) => s.on('data', (b) => {
          if (dec.push(b).length > 0) resolve();
        }));
        s.write(req({ id: 1, getStatus: {} }));
        await answered;
      }
      // The next one is accepted by the kernel and closed by the daemon without an answer.
      const extra = await connect(d.socket);
      const got: Buffer[] = [];
      extra.on('data', (b) => got.push(b));
      const extraClosed = new Promise((resolve) => extra.once('close', resolve));
      extra.write(req({ id: 1, getStatus: {} }));
      await extraClosed;
      expect(Buffer.concat(got).length).toBe(0);
      expect(d.output()).toContain('connection refused: uid holds its connection cap');

      // Another uid is not held to root's count.
      expect(await leaseAsNobody(d.socket)).toMatch(/^[0-9a-f]{32}$/);

      // A slot given back is a slot root can use again.
      held.pop()!.destroy();
      await sleep(200);
      expect((await d.status()).state).toBe(State.TRUSTED);
    } finally {
      for (const s of held) s.destroy();
    }
  }, 60_000);
});

describe('idle connections (a server with a short idle timeout)', () => {
  let dir: string;
  let server: ApiServer;
  let path: string;
  let finishAcquire: (() => void) | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'attestd-idle-'));
    path = join(dir, 'api.sock');
    const ctx = {
      leases: {
        // Stays in flight until the test lets it go.
        acquire: () => new Promise((_, reject) => (finishAcquire = () => reject(new Error('done')))),
      },
      status: { report: () => ({ state: State.TRUSTED }) },
      verifyToken: () => undefined,
    } as unknown as ApiContext;
    server = new ApiServer({ socketPath: path, idleTimeoutMs: 400, log: () => undefined }, ctx);
    await server.listen();
  });

  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('closes a connection with nothing in flight and no bytes, and not one waiting on a request', async () => {
    const idle = await connect(path);
    const busy = await connect(path);
    const talker = await connect(path);
    const closed = new Set<net.Socket>();
    for (const s of [idle, busy, talker]) {
      s.on('close', () => closed.add(s));
      s.resume(); // answers are read, so the end of the stream is seen
    }
    busy.write(req({ id: 1, acquireLease: {} }));
    const started = Date.now();
    // The talker sends a request every 150 ms: never idle that long.
    while (Date.now() - started < 1200) {
      talker.write(req({ id: 2, getStatus: {} }));
      await sleep(150);
    }
    expect(closed.has(idle)).toBe(true);
    expect(closed.has(busy)).toBe(false);
    expect(closed.has(talker)).toBe(false);
    // Once its request is answered, the busy one is idle too.
    finishAcquire!();
    await sleep(1000);
    expect(closed.has(busy)).toBe(true);
    talker.destroy();
  });
});
