/**
 * The typed face of the C++ core (native/). This is the only module that loads the
 * compiled addon: it hands the addon the AttestdError class so native failures arrive
 * with stable codes, and it validates every argument before it crosses the boundary.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { types } from 'node:util';

import { AttestdError } from './base/errors.js';

/** An Ed25519 key whose private half exists only in locked native memory. */
export interface SessionKey {
  /** Ed25519 signature (64 bytes) over `data`. Throws NATIVE_KEY_CLOSED after close(). */
  sign(data: Uint8Array): Buffer;
  /** The raw 32-byte public key. Throws NATIVE_KEY_CLOSED after close(). */
  publicKey(): Buffer;
  /** Zeroes and frees the private key. Idempotent. */
  close(): void;
}

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

export type HashAlgorithm = 'sha256' | 'sha384';

/**
 * A digest and the version of the file it was computed over, as fstat saw it before and
 * after the read (field names and units of node:fs BigIntStats).
 */
export interface FileDigest {
  digest: Buffer;
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

interface NativeKeyHandle {
  sign(data: Uint8Array): Buffer;
  publicKey(): Buffer;
  close(): void;
}

interface NativeAddon {
  setErrorClass(errorClass: typeof AttestdError): void;
  SessionKeyHandle: new () => NativeKeyHandle;
  sha256(data: Uint8Array): Buffer;
  sha384(data: Uint8Array): Buffer;
  hashFile(path: string, alg: HashAlgorithm): Promise<Buffer>;
  hashExecutable(fd: number, alg: HashAlgorithm, maxBytes: number): Promise<FileDigest>;
  peerCredentials(fd: number): PeerCredentials;
  peerPidfd(fd: number): number | null;
  pidfdOpen(pid: number): number;
  pidfdIsAlive(fd: number): boolean;
  closeFd(fd: number): void;
  notify(socketPath: string, message: string): void;
  cvmReport(kind: CvmDeviceKind, device: string, reportData: Buffer): Promise<{ report: Buffer; certs?: Buffer }>;
  adoptProcOpener(fd: number): void;
  procOpen(sock: number, pidfd: number): { fds: number[] } | { refused: string };
  setNotDumpable(): void;
}

export type CvmDeviceKind = 'snp' | 'snp-ext' | 'tdx';

const ADDON_RELATIVE_PATH = join('build', 'Release', 'attestd_native.node');
const MAX_INT32 = 0x7fff_ffff;

let loaded: { addon: NativeAddon } | { error: AttestdError } | undefined;

/**
 * The addon sits under the package root, which is one level up from daemon/native.ts
 * (vitest, source tree) but two from dist/daemon/native.js (compiled); walk up to the
 * folder that holds package.json instead of counting.
 */
function findPackageRoot(start: string): string | undefined {
  let dir = start;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function addon(): NativeAddon {
  if (loaded === undefined) loaded = load();
  if ('error' in loaded) throw loaded.error;
  return loaded.addon;
}

function load(): { addon: NativeAddon } | { error: AttestdError } {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = findPackageRoot(here);
  if (root === undefined) {
    return { error: new AttestdError('NATIVE_UNAVAILABLE', `no package.json above ${here}`) };
  }
  const path = join(root, ADDON_RELATIVE_PATH);
  try {
    const native = createRequire(import.meta.url)(path) as NativeAddon;
    native.setErrorClass(AttestdError);
    return { addon: native };
  } catch (cause) {
    return {
      error: new AttestdError('NATIVE_UNAVAILABLE', `the native core could not be loaded from ${path}`, { cause }),
    };
  }
}

function requireBytes(value: unknown, name: string): asserts value is Uint8Array {
  // types.isUint8Array also accepts Buffers and arrays from other realms.
  if (!types.isUint8Array(value)) {
    throw new AttestdError('INVALID_ARGUMENT', `${name} must be a Buffer or Uint8Array`);
  }
}

function requireInt(value: unknown, name: string, min: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_INT32) {
    throw new AttestdError('INVALID_ARGUMENT', `${name} must be an integer in [${min}, ${MAX_INT32}]`);
  }
}

class NativeSessionKey implements SessionKey {
  readonly #handle: NativeKeyHandle;

  constructor(handle: NativeKeyHandle) {
    this.#handle = handle;
  }

  sign(data: Uint8Array): Buffer {
    requireBytes(data, 'data');
    return this.#handle.sign(data);
  }

  publicKey(): Buffer {
    return this.#handle.publicKey();
  }

  close(): void {
    this.#handle.close();
  }
}

/**
 * Generates a fresh Ed25519 key inside the native core. The first call sets up OpenSSL's
 * secure heap (locked, excluded from core dumps) and throws NATIVE_MEMORY_LOCK_FAILED if
 * that is refused, typically by RLIMIT_MEMLOCK. An unclosed key is freed when collected.
 */
export function createSessionKey(): SessionKey {
  const native = addon();
  return new NativeSessionKey(new native.SessionKeyHandle());
}

export function sha256(data: Uint8Array): Buffer {
  requireBytes(data, 'data');
  return addon().sha256(data);
}

export function sha384(data: Uint8Array): Buffer {
  requireBytes(data, 'data');
  return addon().sha384(data);
}

/**
 * Hashes a regular file the daemon names (a driver file, say) on a libuv worker thread,
 * reading it in 1 MiB chunks with no size limit. Symlinks are followed. Rejects with
 * NATIVE_IO_FAILED (the errno name is in the message) if it cannot be read, is not a regular
 * file or changed while being read, and with INVALID_ARGUMENT for bad arguments. A caller's
 * executable goes through hashExecutable instead.
 */
export function hashFile(path: string, alg: HashAlgorithm): Promise<Buffer> {
  try {
    if (typeof path !== 'string' || path.length === 0 || path.includes('\0')) {
      throw new AttestdError('INVALID_ARGUMENT', 'path must be a non-empty string without NUL');
    }
    if (alg !== 'sha256' && alg !== 'sha384') {
      throw new AttestdError('INVALID_ARGUMENT', "alg must be 'sha256' or 'sha384'");
    }
    return addon().hashFile(path, alg);
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * Hashes the regular file open on `fd`, which the caller keeps and may close as soon as
 * this returns (the core hashes a duplicate, reading from offset 0 without moving the shared
 * file offset), and says which version of the file the digest is of. Runs on the native
 * core's own threads, never on libuv's pool, so no size of file can delay the audit log's
 * writes. Rejects with EXE_TOO_LARGE when the file holds more than `maxBytes`,
 * NATIVE_IO_FAILED when it is not a regular file, cannot be read or changed while being read,
 * and INVALID_ARGUMENT for bad arguments.
 */
export function hashExecutable(fd: number, alg: HashAlgorithm, maxBytes: number): Promise<FileDigest> {
  try {
    requireInt(fd, 'fd', 0);
    if (alg !== 'sha256' && alg !== 'sha384') {
      throw new AttestdError('INVALID_ARGUMENT', "alg must be 'sha256' or 'sha384'");
    }
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
      throw new AttestdError('INVALID_ARGUMENT', 'maxBytes must be a non-negative safe integer');
    }
    return addon().hashExecutable(fd, alg, maxBytes);
  } catch (err) {
    return Promise.reject(err);
  }
}

/** The pid, uid and gid the kernel recorded for the peer of a connected Unix socket. */
export function peerCredentials(fd: number): PeerCredentials {
  requireInt(fd, 'fd', 0);
  return addon().peerCredentials(fd);
}

/**
 * Pidfds handed out by pidfdOpen or peerPidfd and not yet closed. closeFd and pidfdIsAlive
 * accept only these, so a stale or doubled close cannot hit a descriptor number that libuv or
 * another module has since been given.
 */
const openPidfds = new Set<number>();

/** Opens a pidfd (close-on-exec) that pins `pid`; close it with closeFd. */
export function pidfdOpen(pid: number): number {
  requireInt(pid, 'pid', 1);
  const fd = addon().pidfdOpen(pid);
  openPidfds.add(fd);
  return fd;
}

/**
 * A pidfd (close-on-exec) for the process that connected to the Unix socket `fd`, taken from
 * the socket itself (SO_PEERPIDFD), so it names that process even if its pid has since been
 * given to another. Undefined on kernels older than 6.5, which lack the option. Close it
 * with closeFd.
 */
export function peerPidfd(fd: number): number | undefined {
  requireInt(fd, 'fd', 0);
  const pidfd = addon().peerPidfd(fd);
  if (pidfd === null) return undefined;
  openPidfds.add(pidfd);
  return pidfd;
}

function requirePidfd(fd: number): void {
  requireInt(fd, 'fd', 0);
  if (!openPidfds.has(fd)) {
    throw new AttestdError('INVALID_ARGUMENT', `fd ${fd} is not an open pidfd from pidfdOpen`);
  }
}

/** False once the process has terminated (zombies included), true while it runs. */
export function pidfdIsAlive(fd: number): boolean {
  requirePidfd(fd);
  return addon().pidfdIsAlive(fd);
}

/** Closes a pidfd from pidfdOpen or peerPidfd. */
export function closeFd(fd: number): void {
  requirePidfd(fd);
  // Forget it first: the kernel releases the number even if close reports an error.
  openPidfds.delete(fd);
  addon().closeFd(fd);
}

/**
 * Sends one sd_notify datagram ("READY=1", "STATUS=...", "WATCHDOG=1", ...) to the socket
 * systemd named in NOTIFY_SOCKET. The message is newline-separated KEY=VALUE lines.
 */
export function sdNotify(socketPath: string, message: string): void {
  if (typeof socketPath !== 'string' || !(socketPath.startsWith('/') || socketPath.startsWith('@')) || socketPath.length > 107) {
    throw new AttestdError('INVALID_ARGUMENT', 'NOTIFY_SOCKET must be an absolute path or an abstract name');
  }
  if (typeof message !== 'string' || message.length === 0 || message.length > 4096 || message.includes('\0')) {
    throw new AttestdError('INVALID_ARGUMENT', 'notify message must be 1..4096 characters without NUL');
  }
  addon().notify(socketPath, message);
}

/**
 * A report from a legacy confidential-VM guest device: SEV-SNP (`snp`, or `snp-ext` with the
 * certificate table) on /dev/sev-guest, or a TDREPORT (`tdx`) on /dev/tdx_guest. Runs off the
 * main thread; rejects with CVM_UNAVAILABLE when the device is missing or refuses.
 */
export function cvmReport(kind: CvmDeviceKind, device: string, reportData: Uint8Array): Promise<{ report: Buffer; certs?: Buffer }> {
  if (!['snp', 'snp-ext', 'tdx'].includes(kind)) return Promise.reject(new AttestdError('INVALID_ARGUMENT', 'kind must be snp, snp-ext or tdx'));
  if (typeof device !== 'string' || !device.startsWith('/')) return Promise.reject(new AttestdError('INVALID_ARGUMENT', 'device must be an absolute path'));
  if (!(reportData instanceof Uint8Array) || reportData.length !== 64) {
    return Promise.reject(new AttestdError('INVALID_ARGUMENT', 'report data must be 64 bytes'));
  }
  return addon().cvmReport(kind, device, Buffer.from(reportData));
}

/** Descriptors of one process's /proc entries; `exe` is O_PATH (reopen it to read). All close-on-exec. */
export interface ProcEntries {
  exe: number;
  stat: number;
  status: number;
  cgroup: number;
}

/**
 * The socket to attestd-proc-opener (native/proc_opener.c), the process that holds
 * CAP_SYS_PTRACE so that this one does not; 'lost' once it failed. Kept here, where no other
 * module can write to it.
 */
let procOpener: { fd: number; onLost: (why: string) => void } | 'lost' | undefined;

/**
 * Takes over the opener's socket, left open across exec by attestd-proc-opener and named in
 * ATTESTD_PROC_OPENER_FD; it is made close-on-exec at once. `onLost` is told, once, if the
 * opener stops answering; from then on openProcEntries fails (it never falls back).
 */
export function adoptProcOpener(fd: number, onLost: (why: string) => void): void {
  requireInt(fd, 'fd', 0);
  if (procOpener !== undefined) throw new AttestdError('INVALID_ARGUMENT', 'a /proc opener is already adopted');
  addon().adoptProcOpener(fd);
  procOpener = { fd, onLost };
}

/** 'none': this process opens /proc itself; 'ready': through the opener; 'lost': not at all. */
export function procOpenerState(): 'none' | 'ready' | 'lost' {
  return procOpener === undefined ? 'none' : procOpener === 'lost' ? 'lost' : 'ready';
}

/**
 * Descriptors of the /proc entries of the process behind `pidfd` (from pidfdOpen or
 * peerPidfd), opened by the opener while that process was alive. Throws PROC_OPENER_FAILED
 * when the opener refuses (the process exited, say) or is lost. The caller closes them.
 */
export function openProcEntries(pidfd: number): ProcEntries {
  requirePidfd(pidfd);
  if (procOpener === undefined || procOpener === 'lost') {
    throw new AttestdError('PROC_OPENER_FAILED', procOpener === 'lost' ? 'the /proc opener is lost' : 'no /proc opener');
  }
  const { fd, onLost } = procOpener;
  let reply: { fds: number[] } | { refused: string };
  try {
    reply = addon().procOpen(fd, pidfd);
  } catch (err) {
    // A late or malformed answer leaves the channel out of step: it is not used again.
    procOpener = 'lost';
    try {
      addon().closeFd(fd);
    } catch {
      // The number is released whatever close reports.
    }
    onLost(String(err));
    throw err;
  }
  if ('refused' in reply) throw new AttestdError('PROC_OPENER_FAILED', `the /proc opener refused: ${reply.refused}`);
  const [exe, stat, status, cgroup] = reply.fds as [number, number, number, number];
  return { exe, stat, status, cgroup };
}

/**
 * Makes this process non-dumpable: no core file, and no other process of its uid may ptrace
 * it or read its memory through /proc/PID/mem. Called once at start.
 */
export function setNotDumpable(): void {
  addon().setNotDumpable();
}
