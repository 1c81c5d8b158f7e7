/**
 * One client connection: its kernel-given peer, its framing state, its outstanding requests
 * and watches. Responses are queued on the socket in the order they complete. The peer's
 * pidfd stays open until the connection is closed and every request on it is done: a request
 * still identifying its caller must never find that descriptor closed, or its number handed
 * to another connection's pidfd.
 *
 * Output is flow-controlled: a client that does not read its answers must not make the daemon
 * buffer them without end. Past a bound of unsent bytes the connection stops being read (and
 * its already decoded requests wait) until the socket drains; one that stays over the bound
 * too long, or whose output passes a hard cap, is closed.
 */
import type { Socket } from 'node:net';
import { attestd } from '../gen/proto.js';
import { FrameDecoder, frameMessage } from './framing.js';
import { AttestdError } from '../base/errors.js';
import type { ExeDigestCache } from './exe-digests.js';
import { identify, releasePeer, type Peer } from './peer.js';
import type { WorkloadIdentity } from '../base/workload-identity.js';

export type ResponseProps = attestd.lease.v1.Response.$Properties;

export interface OutputLimits {
  /** Unsent bytes past which the connection is no longer read until its socket drains. */
  writeBufferBound: number;
  /** Unsent bytes past which the connection is closed at once. */
  writeBufferCap: number;
  /** How long output may stay over the bound before the connection is closed. */
  writeStallMs: number;
}

export const DEFAULT_OUTPUT_LIMITS: OutputLimits = {
  writeBufferBound: 256 * 1024,
  writeBufferCap: 4 * 1024 * 1024,
  writeStallMs: 30_000,
};

/** What the server hears from a connection's flow control. */
export interface FlowEvents {
  /** Output went back under the bound: decoded requests may go on, reading may resume. */
  drained(): void;
  /** The connection is being closed for its output; `why` is for the log. */
  dropped(why: string): void;
}

export class Connection {
  readonly decoder = new FrameDecoder();
  readonly watches = new Map<number, () => void>();
  closed = false;
  #outstanding = 0;
  #peerReleased = false;
  #stallTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: Socket,
    readonly peer: Peer,
    private readonly cache: ExeDigestCache,
    private readonly limits: OutputLimits = DEFAULT_OUTPUT_LIMITS,
    private readonly events?: FlowEvents,
  ) {}

  /** True while unsent output is over the bound: no more requests are taken until it drains. */
  get outputBlocked(): boolean {
    return this.#stallTimer !== undefined;
  }

  /** Requests started and not yet answered or refused. */
  get outstanding(): number {
    return this.#outstanding;
  }

  /** Counts a request in; the peer stays pinned until it is counted out. */
  requestStarted(): void {
    this.#outstanding++;
  }

  requestFinished(): void {
    this.#outstanding--;
    this.releasePeerIfDrained();
  }

  /** Resolved per request: the process may have exec()ed another program since it connected. */
  identity(): Promise<WorkloadIdentity> {
    // Nothing to answer once closed; and a pidfd released is not ours to use any more.
    if (this.closed || this.#peerReleased) {
      return Promise.reject(new AttestdError('PEER_UNIDENTIFIED', 'connection closed'));
    }
    return identify(this.peer, this.cache);
  }

  /** Another process, pinned by its own pidfd (a derivation's child), identified like a caller with this connection's digest cache. */
  identifyOther(other: Peer): Promise<WorkloadIdentity> {
    return identify(other, this.cache);
  }

  send(response: ResponseProps): void {
    if (this.closed) return;
    this.socket.write(frameMessage(attestd.lease.v1.Response.encode(response).finish()));
    if (this.socket.writableLength > this.limits.writeBufferBound) this.blockOutput();
  }

  private blockOutput(): void {
    if (this.socket.writableLength > this.limits.writeBufferCap) {
      this.events?.dropped('output over the hard cap');
      this.close();
      return;
    }
    if (this.#stallTimer !== undefined) return;
    this.socket.pause();
    this.#stallTimer = setTimeout(() => {
      this.events?.dropped('output not read in time');
      this.close();
    }, this.limits.writeStallMs);
    this.#stallTimer.unref();
    this.socket.once('drain', () => {
      clearTimeout(this.#stallTimer);
      this.#stallTimer = undefined;
      if (!this.closed) this.events?.drained();
    });
  }

  /** Closes the connection; `graceful` lets already written responses drain first. */
  close(graceful = false): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.#stallTimer);
    for (const cancel of this.watches.values()) cancel();
    this.watches.clear();
    this.releasePeerIfDrained();
    if (graceful) {
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1000).unref();
    } else {
      this.socket.destroy();
    }
  }

  private releasePeerIfDrained(): void {
    if (!this.closed || this.#outstanding > 0 || this.#peerReleased) return;
    this.#peerReleased = true;
    releasePeer(this.peer);
  }
}
