/**
 * Who is calling, as the kernel says: SO_PEERCRED gives pid, uid and gid at connect time, and
 * SO_PEERPIDFD a pidfd for that very process, which no later holder of its pid can pass for;
 * /proc gives its start time, executable, credentials now and cgroup. Every /proc read of an
 * identification comes before a final liveness check through the pidfd: a process that is
 * still alive then held its pid all along, so no read can have described another process.
 */
import { closeSync, fstatSync, openSync, readFileSync, readlinkSync, type BigIntStats } from 'node:fs';
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
 * The /proc entries come from attestd-proc-opener when the daemon runs under it (the service
 * does: it alone holds CAP_SYS_PTRACE, which another user's /proc/PID/exe needs), opened for
 * the caller's pidfd; otherwise the daemon opens them itself. The executable is opened once,
 * through that /proc/PID/exe, and everything about it comes from that descriptor: the cache
 * key (its fstat), the digest (of its bytes) and the path (its own link). Afterwards the
 * process must still run that same inode, so a caller that exec()s another program meanwhile
 * is refused rather than given either program's digest.
 */
export async function identify(peer: Peer, cache: ExeDigestCache): Promise<WorkloadIdentity> {
  let exe: number | undefined;
  try {
    const first = openEntries(peer);
    let startTime: bigint;
    try {
      startTime = parseStartTime(readFileSync(first.stat, 'utf8'));
      // Reopened for reading with the daemon's own file permissions (the opener's is O_PATH).
      exe = openSync(`/proc/self/fd/${first.exe}`, 'r');
    } finally {
      closeEntries(first);
    }
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
    const now = openEntries(peer);
    let running: BigIntStats, status: string, cgroup: string;
    try {
      running = fstatSync(now.exe, { bigint: true });
      status = readFileSync(now.status, 'utf8');
      cgroup = parseCgroup(readFileSync(now.cgroup, 'utf8'));
    } finally {
      closeEntries(now);
    }
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

/** The /proc entries of the peer: from the opener when there is one, else opened here. */
function openEntries(peer: Pick<Peer, 'pid' | 'pidfd'>): native.ProcEntries {
  if (native.procOpenerState() !== 'none') return native.openProcEntries(peer.pidfd);
  const opened: number[] = [];
  try {
    for (const name of ['exe', 'stat', 'status', 'cgroup']) opened.push(openSync(`/proc/${peer.pid}/${name}`, 'r'));
  } catch (err) {
    for (const fd of opened) closeSync(fd);
    throw err;
  }
  const [exe, stat, status, cgroup] = opened as [number, number, number, number];
  return { exe, stat, status, cgroup };
}

function closeEntries(e: native.ProcEntries): void {
  for (const fd of [e.exe, e.stat, e.status, e.cgroup]) closeSync(fd);
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

/**
 * The start time of whichever process holds `pid` now (a lease holder's, say), through the
 * opener when there is one: the daemon itself cannot see another user's /proc/PID then.
 */
export function readStartTime(pid: number): bigint {
  return parseStartTime(readStat(pid));
}

/** /proc/PID/stat of whichever process holds `pid` now, through the opener when there is one. */
function readStat(pid: number): string {
  if (native.procOpenerState() === 'none') return readFileSync(`/proc/${pid}/stat`, 'utf8');
  const pidfd = native.pidfdOpen(pid);
  try {
    const entries = native.openProcEntries(pidfd);
    try {
      return readFileSync(entries.stat, 'utf8');
    } finally {
      closeEntries(entries);
    }
  } finally {
    native.closeFd(pidfd);
  }
}

/** How far up the kernel's parent chain a descent is looked for: deeper process trees are refused. */
export const MAX_DESCENT_STEPS = 64;

/**
 * Whether `pid` descends from `ancestor` (a pid and its start time, so a reused pid is not
 * taken for it): its parent, its parent's parent and so on, read from /proc/PID/stat as the
 * kernel has them now, at most MAX_DESCENT_STEPS up. A process is not its own descendant. A
 * process in the chain that exits meanwhile ends the walk (false), as does pid 1 or 0.
 */
export function descendsFrom(pid: number, ancestor: { pid: number; startTime: bigint }): boolean {
  let at = pid;
  for (let step = 0; step < MAX_DESCENT_STEPS; step++) {
    let parent: number;
    try {
      parent = parseParentPid(readStat(at));
    } catch {
      return false;
    }
    if (parent === ancestor.pid) {
      try {
        return readStartTime(parent) === ancestor.startTime;
      } catch {
        return false;
      }
    }
    if (parent <= 1) return false;
    at = parent;
  }
  return false;
}

/** Field 4 of /proc/PID/stat, the parent pid; the command name before it may hold spaces and parentheses. */
export function parseParentPid(text: string): number {
  const close = text.lastIndexOf(')');
  const value = text.slice(close + 2).split(' ')[1];
  if (close < 0 || value === undefined || !/^\d{1,10}$/.test(value)) {
    throw new AttestdError('PEER_UNIDENTIFIED', 'unreadable parent pid');
  }
  return Number(value);
}

/** Field 22 of /proc/PID/stat; the command name before it may hold spaces and parentheses. */
export function parseStartTime(text: string): bigint {
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
