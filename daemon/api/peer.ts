/**
 * Who is calling, as the kernel says: SO_PEERCRED gives pid, uid and gid at connect time, and
 * SO_PEERPIDFD a pidfd for that very process, which no later holder of its pid can pass for;
 * /proc gives its start time, executable, credentials now and cgroup. Every /proc read of an
 * identification comes before a final liveness check through the pidfd: a process that is
 * still alive then held its pid all along, so no read can have described another process.
 */
import { closeSync, fstatSync, openSync, readFileSync, readlinkSync, statSync, type BigIntStats } from 'node:fs';
import { AttestdError } from '../base/errors.js';
import * as native from '../native.js';
import type { WorkloadIdentity } from '../base/workload-identity.js';
import { exeKey, MAX_EXE_BYTES, type ExeDigestCache } from './exe-digests.js';

export interface Peer {
  pid: number;
  uid: number;
  gid: number;
  pidfd: number;
}

export function peerOf(fd: number): Peer {
  const creds = native.peerCredentials(fd);
  if (creds.pid <= 0) throw new AttestdError('PEER_UNIDENTIFIED', 'peer has no pid in this namespace');
  // Kernels before 6.5 have no SO_PEERPIDFD: there the pidfd can only pin whichever process
  // holds the pid at accept, which is the caller unless it exited and the pid was reused.
  const pidfd = native.peerPidfd(fd) ?? native.pidfdOpen(creds.pid);
  return { ...creds, pidfd };
}

export function releasePeer(peer: Peer): void {
  native.closeFd(peer.pidfd);
}

/**
 * The caller's identity now. /proc is read synchronously on purpose: procfs answers from
 * memory in microseconds, and a dozen thread-pool round trips per request cost far more than
 * they save. Only hashing an executable not seen before goes off the main thread.
 *
 * The executable is opened once, through /proc/PID/exe, and everything about it comes from
 * that descriptor: the cache key (its fstat), the digest (of its bytes) and the path (its own
 * link). Afterwards the process must still run that same inode, so a caller that exec()s
 * another program meanwhile is refused rather than given either program's digest.
 */
export async function identify(peer: Peer, cache: ExeDigestCache): Promise<WorkloadIdentity> {
  let exe: number | undefined;
  try {
    const startTime = readStartTime(peer.pid);
    exe = openSync(`/proc/${peer.pid}/exe`, 'r');
    const st = fstatSync(exe, { bigint: true });
    if (!st.isFile()) throw new AttestdError('PEER_UNIDENTIFIED', 'executable is not a regular file');
    if (st.size > BigInt(MAX_EXE_BYTES)) {
      // Only the caller's own executable earns it this code, not that of a pid's next holder.
      if (!native.pidfdIsAlive(peer.pidfd)) throw new AttestdError('PEER_UNIDENTIFIED', 'peer exited while being identified');
      throw new AttestdError('EXE_TOO_LARGE', `executable of pid ${peer.pid} is ${st.size} bytes, more than ${MAX_EXE_BYTES}`);
    }
    const exePath = readlinkSync(`/proc/self/fd/${exe}`);
    const digest = cache.get(exeKey(st), exe);
    // The core hashes a duplicate of the descriptor; ours is done with.
    closeSync(exe);
    exe = undefined;
    const exeSha256 = await digest;

    // Everything below describes the process as it is now, and is trusted only because the
    // pidfd says afterwards that the process never exited: then it held its pid throughout,
    // so the start time read first is still its own too.
    const running = statSync(`/proc/${peer.pid}/exe`, { bigint: true });
    const status = readFileSync(`/proc/${peer.pid}/status`, 'utf8');
    const cgroup = parseCgroup(readFileSync(`/proc/${peer.pid}/cgroup`, 'utf8'));
    if (!native.pidfdIsAlive(peer.pidfd)) {
      throw new AttestdError('PEER_UNIDENTIFIED', 'peer exited while being identified');
    }
    if (!sameFile(running, st)) {
      throw new AttestdError('PEER_UNIDENTIFIED', 'peer executed another program while being identified');
    }
    requireConnectCredentials(peer, status);
    return { pid: peer.pid, uid: peer.uid, gid: peer.gid, startTime, exePath, exeSha256, cgroup };
  } catch (err) {
    if (err instanceof AttestdError && (err.code === 'PEER_UNIDENTIFIED' || err.code === 'EXE_TOO_LARGE')) throw err;
    throw new AttestdError('PEER_UNIDENTIFIED', 'peer process could not be identified', { cause: err });
  } finally {
    if (exe !== undefined) closeSync(exe);
  }
}

function sameFile(a: BigIntStats, b: BigIntStats): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/**
 * SO_PEERCRED holds the credentials of connect(); the identity carries them, so the process
 * must still have them as its real and effective ids. One that changed user or group since
 * (a setuid step, a dropped privilege) is refused rather than named by ids it no longer has.
 */
export function requireConnectCredentials(peer: Pick<Peer, 'uid' | 'gid'>, status: string): void {
  const uids = parseIds(status, 'Uid');
  const gids = parseIds(status, 'Gid');
  if (uids.real !== peer.uid || uids.effective !== peer.uid || gids.real !== peer.gid || gids.effective !== peer.gid) {
    throw new AttestdError(
      'PEER_UNIDENTIFIED',
      `peer credentials changed since connect: uid ${uids.real}/${uids.effective}, gid ${gids.real}/${gids.effective}, ` +
        `connected as ${peer.uid}/${peer.gid}`,
    );
  }
}

/** Real and effective id from a "Uid:" or "Gid:" line of /proc/PID/status (real, effective, saved, fs). */
export function parseIds(status: string, field: 'Uid' | 'Gid'): { real: number; effective: number } {
  const line = status.split('\n').find((l) => l.startsWith(`${field}:`));
  const ids = line?.slice(field.length + 1).trim().split(/\s+/) ?? [];
  const [real, effective] = ids.map((s) => (/^\d{1,10}$/.test(s) ? Number(s) : Number.NaN));
  if (ids.length !== 4 || real === undefined || effective === undefined || !(real <= 0xffff_ffff) || !(effective <= 0xffff_ffff)) {
    throw new AttestdError('PEER_UNIDENTIFIED', `unreadable ${field} line in /proc/PID/status`);
  }
  return { real, effective };
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
