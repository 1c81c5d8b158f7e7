/**
 * One client connection: its kernel-given peer, its framing state, its outstanding requests
 * and watches. Responses are queued on the socket in the order they complete. The peer's
 * pidfd stays open until the connection is closed and every request on it is done: a request
 * still identifying its caller must never find that descriptor closed, or its number handed
 * to another connection's pidfd.
 */
import type { Socket } from 'node:net';
import { attestd } from '../gen/proto.js';
import { FrameDecoder, frameMessage } from './framing.js';
import { AttestdError } from '../base/errors.js';
import type { ExeDigestCache } from './exe-digests.js';
import { identify, releasePeer, type Peer } from './peer.js';
import type { WorkloadIdentity } from '../base/workload-identity.js';

export type ResponseProps = attestd.lease.v1.Response.$Properties;

export class Connection {
  readonly decoder = new FrameDecoder();
  readonly watches = new Map<number, () => void>();
  closed = false;
  #outstanding = 0;
  #peerReleased = false;

  constructor(
    readonly socket: Socket,
    readonly peer: Peer,
    private readonly cache: ExeDigestCache,
  ) {}

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

  send(response: ResponseProps): void {
    if (this.closed) return;
    this.socket.write(frameMessage(attestd.lease.v1.Response.encode(response).finish()));
  }

  /** Closes the connection; `graceful` lets already written responses drain first. */
  close(graceful = false): void {
    if (this.closed) return;
    this.closed = true;
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
