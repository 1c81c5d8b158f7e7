/**
 * Digests of callers' executables, so a busy client costs one hash. An entry is keyed by the
 * fstat of the very descriptor that is hashed (device, inode, size, mtime, ctime), and the
 * native core reports which version of the file it read; a digest of any other version than
 * the key names is refused, never cached. So no entry can hold the digest of another file,
 * or of another version of the same file, than its key describes.
 */
import type { BigIntStats } from 'node:fs';
import { AttestdError } from '../base/errors.js';
import * as native from '../native.js';

/**
 * The largest executable the daemon hashes. Real programs, even large static builds of CUDA
 * applications and language runtimes, stay well below it; the file is one the caller picks,
 * and beyond this size hashing a new one would cost the hashing threads seconds per caller.
 */
export const MAX_EXE_BYTES = 512 * 1024 * 1024;

/** Hashes queued or running at once: each holds a descriptor and a place in the hashing queue. */
export const MAX_PENDING_HASHES = 256;

export type FileVersion = Pick<BigIntStats, 'dev' | 'ino' | 'size' | 'mtimeNs' | 'ctimeNs'>;

/** Hashes the file open on a descriptor, which may be closed once this returns. */
export type ExeHasher = (fd: number) => Promise<native.FileDigest>;

export function exeKey(v: FileVersion): string {
  return `${v.dev}:${v.ino}:${v.size}:${v.mtimeNs}:${v.ctimeNs}`;
}

const hashExecutable: ExeHasher = (fd) => native.hashExecutable(fd, 'sha256', MAX_EXE_BYTES);

export class ExeDigestCache {
  private readonly entries = new Map<string, Promise<Buffer>>();
  private pending = 0;

  constructor(
    private readonly max = 1024,
    private readonly hash: ExeHasher = hashExecutable,
  ) {}

  /** The SHA-256 of the file open on `fd`, whose fstat gave `key`; `fd` may be closed once this returns. */
  get(key: string, fd: number): Promise<Buffer> {
    const hit = this.entries.get(key);
    if (hit) return hit;
    if (this.pending >= MAX_PENDING_HASHES) {
      return Promise.reject(new AttestdError('PEER_UNIDENTIFIED', 'too many executables waiting to be hashed'));
    }
    this.pending++;
    const digest = this.hash(fd)
      .then((r) => {
        if (exeKey(r) !== key) throw new AttestdError('PEER_UNIDENTIFIED', 'executable changed before it was hashed');
        return r.digest;
      })
      .finally(() => this.pending--);
    digest.catch(() => {
      if (this.entries.get(key) === digest) this.entries.delete(key);
    });
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, digest);
    return digest;
  }
}
