/**
 * One client code path for both sides of the lease benchmark: a connection that sends one
 * framed payload and waits for the next frame back, using the daemon's own framing
 * (frameMessage, FrameDecoder). Against the daemon the payload is a Request envelope and
 * the answer a Response; against the echo server the answer is the payload itself. The
 * socket, the framing, the event-loop work and the timing are the same for both.
 */
import net from 'node:net';
import { FrameDecoder, frameMessage } from '../../daemon/api/framing.js';
import { msSince, nowNs, sleep } from './stats.js';

export class FramedConnection {
  private readonly decoder = new FrameDecoder();
  private waiting: { resolve: (frame: Buffer) => void; reject: (err: Error) => void }[] = [];
  private failure: Error | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = this.decoder.push(chunk);
      } catch (err) {
        this.fail(err as Error);
        return;
      }
      for (const f of frames) this.waiting.shift()?.resolve(f);
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed by the server')));
  }

  static connect(path: string): Promise<FramedConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(path);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new FramedConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Sends one frame; resolves with the next frame the server sends (answers come in order). */
  roundTrip(payload: Uint8Array): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.socket.write(frameMessage(payload));
    });
  }

  close(): void {
    this.failure ??= new Error('closed');
    this.socket.destroy();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) w.reject(err);
  }
}

/** One request/answer exchange on a connection; `seq` numbers requests on that connection from 1. */
export type Exchange = (conn: FramedConnection, seq: number) => Promise<void>;

/**
 * Latency of `count` sequential exchanges on one connection, in milliseconds each, after
 * `warmup` untimed ones; stops early at `maxMs` of timed work.
 */
export async function latencies(conn: FramedConnection, exchange: Exchange, opts: { warmup: number; count: number; maxMs: number }): Promise<number[]> {
  let seq = 0;
  for (let i = 0; i < opts.warmup; i++) await exchange(conn, ++seq);
  const samples: number[] = [];
  const start = nowNs();
  while (samples.length < opts.count && msSince(start) < opts.maxMs) {
    const t = nowNs();
    await exchange(conn, ++seq);
    samples.push(msSince(t));
  }
  return samples;
}

/**
 * Closed-loop throughput: every connection runs exchanges back to back; completions are
 * counted only inside the measuring window that follows `warmupMs`. Returns exchanges per second.
 */
export async function throughput(conns: FramedConnection[], exchange: Exchange, opts: { warmupMs: number; measureMs: number }): Promise<number> {
  let completed = 0;
  let stop = false;
  const loops = conns.map(async (conn) => {
    let seq = 0;
    while (!stop) {
      await exchange(conn, ++seq);
      completed++;
    }
  });
  await sleep(opts.warmupMs);
  const c0 = completed;
  const t0 = nowNs();
  await sleep(opts.measureMs);
  const c1 = completed;
  const elapsed = msSince(t0);
  stop = true;
  await Promise.all(loops);
  return ((c1 - c0) * 1000) / elapsed;
}

export async function connectMany(path: string, n: number): Promise<FramedConnection[]> {
  const conns: FramedConnection[] = [];
  for (let i = 0; i < n; i++) conns.push(await FramedConnection.connect(path));
  return conns;
}

export function closeAll(conns: FramedConnection[]): void {
  for (const c of conns) c.close();
}
