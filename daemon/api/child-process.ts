/**
 * The child process of a derivation, as the kernel says: pinned by a pidfd of its own, it must
 * descend from the caller (the kernel's parent chain, peer.ts) and be identified like a caller
 * would be, with the caller's uid and gid as its real and effective ids.
 */
import { AttestdError } from '../base/errors.js';
import * as native from '../native.js';
import type { WorkloadIdentity } from '../base/workload-identity.js';
import type { Connection } from './connection.js';
import { descendsFrom } from './peer.js';

export async function identifyChild(conn: Pick<Connection, 'identifyOther'>, holder: WorkloadIdentity, pid: number): Promise<WorkloadIdentity> {
  let pidfd: number;
  try {
    pidfd = native.pidfdOpen(pid);
  } catch (err) {
    throw new AttestdError('LINEAGE_CHILD_INVALID', `no process ${pid}`, { cause: err });
  }
  try {
    if (!descendsFrom(pid, holder)) throw new AttestdError('LINEAGE_NOT_DESCENDANT', `process ${pid} does not descend from the holder ${holder.pid}`);
    let child: WorkloadIdentity;
    try {
      child = await conn.identifyOther({ pid, uid: holder.uid, gid: holder.gid, pidfd });
    } catch (err) {
      throw new AttestdError('LINEAGE_CHILD_INVALID', `process ${pid} could not be identified as the holder's user`, { cause: err });
    }
    // The walk started at `pid`: the process pinned then is still alive, so it was the one walked from.
    if (!native.pidfdIsAlive(pidfd)) throw new AttestdError('LINEAGE_CHILD_INVALID', `process ${pid} exited`);
    return child;
  } finally {
    native.closeFd(pidfd);
  }
}
