/**
 * One client connection: its kernel-given peer, its framing state, its outstanding requests
 * and watches. Responses are queued on the socket in the order they complete.
 */
import type { Socket } from 'node:net';
import { attestd } from '../gen/proto.js';
import { FrameDecoder, frameMessage } from './framing.js';
import type { ExeDigestCache } from './exe-digests.js';
import { identify, releasePeer, type Peer } from './peer.js';
import type { WorkloadIdentity } from '../base/workload-identity.js';

export type ResponseProps = attestd.lease.v1.Response.$Properties;

export class Connection {
  readonly decoder = new FrameDecoder();
  readonly watches = new Map<number, () => void>();
  outstanding = 0;
  closed = false;

  constructor(
    readonly socket: Socket,
    readonly peer: Peer,
    private readonly cache: ExeDigestCache,
  ) {}

  /** Resolved per request: the process may have exec()ed another program since it connected. */
  identity(): Promise<WorkloadIdentity> {
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
    releasePeer(this.peer);
    if (graceful) {
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1000).unref();
    } else {
      this.socket.destroy();
    }
  }
}
