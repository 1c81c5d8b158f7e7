/**
 * The workload API server on a Unix stream socket. Every byte from a client is hostile:
 * frames are bounded before buffering, envelopes that do not decode close the connection,
 * each connection has a cap on outstanding requests and watches, a client that leaves
 * half a frame stalls only itself and is dropped after a timeout, and no handler error
 * reaches the client as more than a stable code and a fixed short text.
 */
import net from 'node:net';
import { chmod, chown, lstat, unlink } from 'node:fs/promises';
import { attestd } from '../gen/proto.js';
import { AttestdError, ERROR_CODES, asAttestdError } from '../base/errors.js';
import { Connection, type ResponseProps } from './connection.js';
import { ExeDigestCache } from './exe-digests.js';
import { peerOf } from './peer.js';
import type { ApiContext, Handler } from './handler.js';
import { acquireLease } from './handlers/acquire.js';
import { renewLease } from './handlers/renew.js';
import { releaseLease } from './handlers/release.js';
import { watchLease } from './handlers/watch.js';
import { getStatus } from './handlers/status.js';
import { verifyLease } from './handlers/verify.js';

export interface ServerOptions {
  socketPath: string;
  /** Group owning the socket file (mode 0660); undefined keeps the daemon's group. */
  socketGid?: number;
  /** An already listening socket handed over by systemd (fd), used instead of binding. */
  listenFd?: number;
  maxConnections?: number;
  maxOutstandingPerConnection?: number;
  /** A partial frame older than this closes the connection. */
  partialFrameTimeoutMs?: number;
  log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

type Call = NonNullable<attestd.lease.v1.Request['call']>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const HANDLERS: Record<Call, Handler<any>> = {
  acquireLease, renewLease, releaseLease, watchLease, getStatus, verifyLease,
};

export class ApiServer {
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private readonly cache = new ExeDigestCache();
  private stopping = false;

  constructor(private readonly opts: ServerOptions, private readonly ctx: ApiContext) {
    this.server = net.createServer({ allowHalfOpen: false }, (socket) => this.accept(socket));
    this.server.on('error', (err) => opts.log('error', 'socket server error', { err: err.message }));
  }

  async listen(): Promise<void> {
    if (this.opts.listenFd !== undefined) {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen({ fd: this.opts.listenFd }, () => resolve());
      });
      return;
    }
    await removeStaleSocket(this.opts.socketPath);
    // Create the socket file with mode 0660 from the start: no window where it is wider.
    const oldMask = process.umask(0o117);
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(this.opts.socketPath, () => {
          this.server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(oldMask);
    }
    await chmod(this.opts.socketPath, 0o660);
    if (this.opts.socketGid !== undefined) await chown(this.opts.socketPath, process.getuid?.() ?? 0, this.opts.socketGid);
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  async close(): Promise<void> {
    this.stopping = true;
    for (const c of this.connections) c.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    if (this.stopping || this.connections.size >= (this.opts.maxConnections ?? 1024)) {
      socket.destroy();
      return;
    }
    let conn: Connection;
    try {
      // The fd of an accepted Unix socket; Node exposes it on the handle.
      const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (typeof fd !== 'number' || fd < 0) throw new AttestdError('PEER_UNIDENTIFIED', 'no socket fd');
      conn = new Connection(socket, peerOf(fd), this.cache);
    } catch (err) {
      this.opts.log('warn', 'peer not identified; connection dropped', { err: String(err) });
      socket.destroy();
      return;
    }
    this.connections.add(conn);
    let partialTimer: NodeJS.Timeout | undefined;
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = conn.decoder.push(chunk);
      } catch (err) {
        this.reject(conn, 0, asAttestdError(err), true);
        return;
      }
      for (const frame of frames) this.dispatch(conn, frame);
      if (partialTimer) clearTimeout(partialTimer);
      partialTimer = undefined;
      if (conn.decoder.pending > 0) {
        partialTimer = setTimeout(() => {
          this.opts.log('warn', 'partial frame timed out; connection closed', { pid: conn.peer.pid });
          conn.close();
        }, this.opts.partialFrameTimeoutMs ?? 10_000);
        partialTimer.unref();
      }
    });
    socket.on('error', () => conn.close());
    socket.on('close', () => {
      if (partialTimer) clearTimeout(partialTimer);
      conn.close();
      this.connections.delete(conn);
    });
  }

  private dispatch(conn: Connection, frame: Buffer): void {
    let req: attestd.lease.v1.Request;
    try {
      req = attestd.lease.v1.Request.decode(frame);
    } catch {
      // The stream can no longer be trusted to be in step: answer once, then close.
      this.reject(conn, 0, new AttestdError('MALFORMED_REQUEST'), true);
      return;
    }
    const id = req.id;
    if (!Number.isSafeInteger(id) || id <= 0) {
      this.reject(conn, 0, new AttestdError('MALFORMED_REQUEST', 'request id required'), false);
      return;
    }
    const call = req.call;
    if (!call || !HANDLERS[call]) {
      this.reject(conn, id, new AttestdError('UNKNOWN_CALL'), false);
      return;
    }
    if (this.stopping) {
      this.reject(conn, id, new AttestdError('SHUTTING_DOWN'), false);
      return;
    }
    if (conn.outstanding >= (this.opts.maxOutstandingPerConnection ?? 128)) {
      this.reject(conn, id, new AttestdError('TOO_MANY_REQUESTS'), false);
      return;
    }
    // Counted in before the handler runs and out only once it has settled: the peer's pidfd
    // is released after the last request of a closed connection, never under one.
    conn.requestStarted();
    HANDLERS[call](conn, req[call], this.ctx, id)
      .then((result: Omit<ResponseProps, 'id'>) => conn.send({ id, ...result }))
      .catch((err: unknown) => this.reject(conn, id, asAttestdError(err), false))
      .finally(() => conn.requestFinished());
  }

  private reject(conn: Connection, id: number, err: AttestdError, close: boolean): void {
    const level = err.code === 'INTERNAL' ? 'error' : 'debug';
    this.opts.log(level, 'request refused', { code: err.code, detail: err.message, pid: conn.peer.pid, request_id: id });
    // The client gets the code and the code's fixed text, never internal detail.
    conn.send({ id, error: { code: err.code, message: ERROR_CODES[err.code] } });
    if (close) conn.close(true);
  }
}

/**
 * A socket file left by a daemon that died is removed; a live one (something accepts on it)
 * or anything that is not a socket is left alone and start-up fails.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isSocket()) throw new AttestdError('INVALID_ARGUMENT', `${path} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new AttestdError('INVALID_ARGUMENT', `another daemon is serving ${path}`);
  await unlink(path);
}
