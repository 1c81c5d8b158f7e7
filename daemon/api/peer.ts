/**
 * Who is calling, as the kernel says: SO_PEERCRED gives pid, uid and gid at connect time;
 * a pidfd pins that process so a recycled pid is never taken for the caller; /proc gives
 * its start time, executable and cgroup. The caller is re-checked alive (same pidfd, same
 * start time) after the slow steps, so an identity never describes a process that exited
 * meanwhile.
 */
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { AttestdError } from '../base/errors.js';
import * as native from '../native.js';
import type { WorkloadIdentity } from '../base/workload-identity.js';

export interface Peer {
  pid: number;
  uid: number;
  gid: number;
  pidfd: number;
}

export function peerOf(fd: number): Peer {
  const creds = native.peerCredentials(fd);
  if (creds.pid <= 0) throw new AttestdError('PEER_UNIDENTIFIED', 'peer has no pid in this namespace');
  const pidfd = native.pidfdOpen(creds.pid);
  return { ...creds, pidfd };
}

export function releasePeer(peer: Peer): void {
  native.closeFd(peer.pidfd);
}

/** Digests of executables keyed by inode identity and change times, so a busy client is hashed once. */
export class ExeDigestCache {
  private readonly entries = new Map<string, Promise<Buffer>>();
  constructor(private readonly max = 1024) {}

  get(pid: number, key: string): Promise<Buffer> {
    let hit = this.entries.get(key);
    if (!hit) {
      // Hash through the /proc magic link: it opens the very inode the process runs,
      // even when the path was replaced or deleted since.
      hit = native.hashFile(`/proc/${pid}/exe`, 'sha256');
      hit.catch(() => this.entries.delete(key));
      if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(key, hit);
    }
    return hit;
  }
}

/**
 * The caller's identity now. /proc is read synchronously on purpose: procfs answers from
 * memory in microseconds, and a dozen thread-pool round trips per request cost far more than
 * they save. Only hashing an executable not seen before goes off the main thread.
 */
export async function identify(peer: Peer, cache: ExeDigestCache): Promise<WorkloadIdentity> {
  try {
    const startTime = readStartTime(peer.pid);
    const exePath = readlinkSync(`/proc/${peer.pid}/exe`);
    const st = statSync(`/proc/${peer.pid}/exe`, { bigint: true });
    const cgroup = parseCgroup(readFileSync(`/proc/${peer.pid}/cgroup`, 'utf8'));
    const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    const exeSha256 = await cache.get(peer.pid, key);
    // Re-checked after the (possibly slow) hash: the same process, still alive.
    if (!native.pidfdIsAlive(peer.pidfd) || readStartTime(peer.pid) !== startTime) {
      throw new AttestdError('PEER_UNIDENTIFIED', 'peer exited while being identified');
    }
    return { pid: peer.pid, uid: peer.uid, gid: peer.gid, startTime, exePath, exeSha256, cgroup };
  } catch (err) {
    if (err instanceof AttestdError && err.code === 'PEER_UNIDENTIFIED') throw err;
    throw new AttestdError('PEER_UNIDENTIFIED', 'peer process could not be identified', { cause: err });
  }
}

/** Field 22 of /proc/PID/stat; the command name before it may hold spaces and parentheses. */
export function readStartTime(pid: number): bigint {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  const value = fields[19];
  if (close < 0 || value === undefined || !/^\d+$/.test(value)) {
    throw new AttestdError('PEER_UNIDENTIFIED', 'unreadable process start time');
  }
  return BigInt(value);
}

/** The cgroup v2 path ("0::/path"), or "" on a host without the unified hierarchy. */
export function parseCgroup(text: string): string {
  for (const line of text.split('\n')) {
    if (line.startsWith('0::')) return line.slice(3);
  }
  return '';
}
