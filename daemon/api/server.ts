/**
 * The workload API server on a Unix stream socket. Every byte from a client is hostile:
 * frames are bounded before buffering, envelopes that do not decode close the connection,
 * each connection has a cap on outstanding requests and watches, each uid a cap on
 * connections, a client that does not read its answers is no longer read itself, a frame must
 * be complete within a deadline from its first byte (trickling bytes does not extend it), an
 * idle connection is closed, and no handler error reaches the client as more than a stable code
 * and a fixed short text.
 */
import net from 'node:net';
import { chmod, chown, lstat, unlink } from 'node:fs/promises';
import { attestd } from '../gen/proto.js';
import { AttestdError, ERROR_CODES, asAttestdError } from '../base/errors.js';
import { Connection, DEFAULT_OUTPUT_LIMITS, type OutputLimits, type ResponseProps } from './connection.js';
import { ExeDigestCache } from './exe-digests.js';
import { peerOf, releasePeer, type Peer } from './peer.js';
import { UidQuota } from './uid-quota.js';
import type { ApiContext, Handler } from './handler.js';
import { acquireLease } from './handlers/acquire.js';
import { renewLease } from './handlers/renew.js';
import { releaseLease } from './handlers/release.js';
import { watchLease } from './handlers/watch.js';
import { getStatus } from './handlers/status.js';
import { verifyLease } from './handlers/verify.js';
import { activateCredential } from './handlers/activate-credential.js';
import { getLeaseResult } from './handlers/lease-result.js';
import { deriveLease } from './handlers/derive.js';

export interface ServerOptions {
  socketPath: string;
  /** Group owning the socket file (mode 0660); undefined keeps the daemon's group. */
  socketGid?: number;
  /** An already listening socket handed over by systemd (fd), used instead of binding. */
  listenFd?: number;
  maxConnections?: number;
  /** Connections one peer uid may hold at once (root too). */
  maxConnectionsPerUid?: number;
  maxOutstandingPerConnection?: number;
  /** A frame not complete this long after its first byte closes the connection. */
  partialFrameTimeoutMs?: number;
  /** A connection with no request in flight, no watch and no bytes this long is closed. */
  idleTimeoutMs?: number;
  /** Bounds on a connection's unsent output. */
  output?: Partial<OutputLimits>;
  log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

/**
 * Connections one uid may hold by default: an eighth of the global cap, so no single user can
 * fill it, and room for a supervisor that keeps a connection per workload.
 */
export const MAX_CONNECTIONS_PER_UID = 128;
/** A connection with nothing in flight, no watch and no bytes this long is closed. */
export const IDLE_TIMEOUT_MS = 5 * 60_000;

type Call = NonNullable<attestd.lease.v1.Request['call']>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const HANDLERS: Record<Call, Handler<any>> = {
  acquireLease, renewLease, releaseLease, watchLease, getStatus, verifyLease, activateCredential, getLeaseResult,
  deriveLease,
};

export class ApiServer {
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private readonly cache = new ExeDigestCache();
  private readonly uids: UidQuota;
  private readonly output: OutputLimits;
  private stopping = false;

  constructor(private readonly opts: ServerOptions, private readonly ctx: ApiContext) {
    this.uids = new UidQuota(opts.maxConnectionsPerUid ?? MAX_CONNECTIONS_PER_UID);
    this.output = { ...DEFAULT_OUTPUT_LIMITS, ...opts.output };
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
    const peer = this.admit(socket);
    if (!peer) return;
    // Frames decoded but not yet dispatched: they wait while the connection's output is blocked.
    const inbox: Buffer[] = [];
    const pump = (): void => {
      while (inbox.length > 0 && !conn.outputBlocked && !conn.closed) this.dispatch(conn, inbox.shift()!);
      if (inbox.length === 0 && !conn.outputBlocked && !conn.closed) socket.resume();
      else socket.pause();
    };
    const conn: Connection = new Connection(socket, peer, this.cache, this.output, {
      drained: pump,
      dropped: (why) => this.opts.log('warn', 'client not reading its answers; connection closed', { why, pid: peer.pid }),
    });
    this.connections.add(conn);
    let partialTimer: NodeJS.Timeout | undefined;
    this.closeWhenIdle(conn, () => inbox.length > 0);
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = conn.decoder.push(chunk);
      } catch (err) {
        this.reject(conn, 0, asAttestdError(err), true);
        return;
      }
      // The deadline of a frame runs from its first byte: a chunk that only adds to the same
      // partial frame leaves the timer running, so trickling bytes cannot hold a slot forever.
      if (frames.length > 0 || conn.decoder.pending === 0) {
        clearTimeout(partialTimer);
        partialTimer = undefined;
      }
      if (conn.decoder.pending > 0 && partialTimer === undefined) {
        partialTimer = setTimeout(() => {
          this.opts.log('warn', 'partial frame timed out; connection closed', { pid: peer.pid });
          conn.close();
        }, this.opts.partialFrameTimeoutMs ?? 10_000);
        partialTimer.unref();
      }
      if (frames.length === 0) return;
      if (inbox.length === 0 && !conn.outputBlocked) {
        // The common case, one request at a time, without the queue.
        let i = 0;
        while (i < frames.length && !conn.outputBlocked && !conn.closed) this.dispatch(conn, frames[i++]!);
        if (i === frames.length || conn.closed) return;
        frames = frames.slice(i);
      }
      for (const f of frames) inbox.push(f);
      socket.pause();
    });
    socket.on('error', () => conn.close());
    socket.on('close', () => {
      clearTimeout(partialTimer);
      inbox.length = 0;
      conn.close();
      if (this.connections.delete(conn)) this.uids.give(peer.uid);
    });
  }

  /**
   * The peer of a new connection, or undefined when it is refused (stopping, the global cap,
   * no identity, or its uid at its own cap); a refused socket is destroyed here.
   */
  private admit(socket: net.Socket): Peer | undefined {
    if (this.stopping || this.connections.size >= (this.opts.maxConnections ?? 1024)) {
      socket.destroy();
      return undefined;
    }
    let peer: Peer;
    try {
      // The fd of an accepted Unix socket; Node exposes it on the handle.
      const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (typeof fd !== 'number' || fd < 0) throw new AttestdError('PEER_UNIDENTIFIED', 'no socket fd');
      peer = peerOf(fd);
    } catch (err) {
      this.opts.log('warn', 'peer not identified; connection dropped', { err: String(err) });
      socket.destroy();
      return undefined;
    }
    if (!this.uids.tryTake(peer.uid)) {
      this.opts.log('warn', 'connection refused: uid holds its connection cap', { uid: peer.uid, pid: peer.pid,
        cap: this.opts.maxConnectionsPerUid ?? MAX_CONNECTIONS_PER_UID });
      releasePeer(peer);
      socket.destroy();
      return undefined;
    }
    return peer;
  }

  /**
   * Node's socket timeout measures time without bytes either way. A connection waiting on a
   * request, holding a watch, in the middle of a frame or with requests queued is not idle
   * however quiet it is: the timer is armed again.
   */
  private closeWhenIdle(conn: Connection, queued: () => boolean): void {
    const idleMs = this.opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
    conn.socket.setTimeout(idleMs);
    conn.socket.on('timeout', () => {
      if (conn.outstanding > 0 || conn.watches.size > 0 || conn.decoder.pending > 0 || queued()) {
        conn.socket.setTimeout(idleMs);
        return;
      }
      this.opts.log('debug', 'idle connection closed', { pid: conn.peer.pid });
      conn.close();
    });
  }

  /** Connections the uid holds now. */
  connectionsOf(uid: number): number {
    return this.uids.held(uid);
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
