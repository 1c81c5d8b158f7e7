/**
 * Client of the workload API, used by attestctl and by Node integrations. One connection,
 * pipelined requests matched by id, server pushes for watches delivered to a callback.
 */
import net from 'node:net';
import { attestd } from '../gen/proto.js';
import { FrameDecoder, frameMessage } from '../api/framing.js';

type Req = Omit<attestd.lease.v1.Request.$Properties, 'id'>;
type Res = attestd.lease.v1.Response;

export const DEFAULT_SOCKET = '/run/attestd/attestd.sock';

/** A refusal from the daemon: `code` is one of the stable codes of docs/errors.md. */
export class RemoteError extends Error {
  constructor(readonly code: string, message: string) {
    super(`${code}: ${message}`);
    this.name = 'RemoteError';
  }
}

/** The socket could not be reached or was closed under a request. */
export class ConnectionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConnectionError';
  }
}

export function resolveSocket(flag?: string): string {
  return flag ?? process.env.ATTESTD_SOCKET ?? DEFAULT_SOCKET;
}

interface PendingCall {
  resolve: (r: Res) => void;
  reject: (e: Error) => void;
  onPush?: (r: Res) => void;
}

export class AttestdClient {
  private nextId = 1;
  private readonly pending = new Map<number, PendingCall>();
  private readonly pushes = new Map<number, (r: Res) => void>();
  private readonly decoder = new FrameDecoder();
  private closeListeners: ((err?: Error) => void)[] = [];
  private closed = false;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = this.decoder.push(chunk);
      } catch (err) {
        this.fail(new ConnectionError(`bad frame from daemon: ${(err as Error).message}`));
        return;
      }
      for (const f of frames) this.onFrame(f);
    });
    socket.on('error', (err) => this.fail(new ConnectionError(err.message, { cause: err })));
    socket.on('close', () => this.fail(new ConnectionError('connection closed by the daemon')));
  }

  static connect(socketPath: string, timeoutMs = 5000): Promise<AttestdClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ConnectionError(`timed out connecting to ${socketPath}`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new AttestdClient(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new ConnectionError(`cannot connect to ${socketPath}: ${err.message}`, { cause: err }));
      });
    });
  }

  /** Sends one request; resolves with the response, rejects with RemoteError on a refusal. */
  call(req: Req, onPush?: (r: Res) => void): Promise<Res> {
    if (this.closed) return Promise.reject(new ConnectionError('connection closed'));
    const id = this.nextId++;
    return new Promise<Res>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onPush });
      this.socket.write(frameMessage(attestd.lease.v1.Request.encode({ id, ...req }).finish()));
    });
  }

  onClose(listener: (err?: Error) => void): void {
    this.closeListeners.push(listener);
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private onFrame(frame: Buffer): void {
    let res: Res;
    try {
      res = attestd.lease.v1.Response.decode(frame);
    } catch {
      this.fail(new ConnectionError('undecodable response from daemon'));
      return;
    }
    const p = this.pending.get(res.id);
    if (p) {
      this.pending.delete(res.id);
      if (res.error) {
        p.reject(new RemoteError(res.error.code ?? 'INTERNAL', res.error.message ?? ''));
        return;
      }
      if (p.onPush) this.pushes.set(res.id, p.onPush);
      p.resolve(res);
      return;
    }
    this.pushes.get(res.id)?.(res);
  }

  private fail(err: Error): void {
    const wasClosed = this.closed;
    this.closed = true;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.pushes.clear();
    const listeners = this.closeListeners;
    this.closeListeners = [];
    for (const l of listeners) l(wasClosed ? undefined : err);
  }
}
