/**
 * Where the attestation key is kept between restarts: one file in the daemon's state folder,
 * readable by its owner only (it holds the AK's authValue). Written whole under a temporary
 * name, flushed, then renamed over the old one and the folder flushed, so a crash leaves the
 * old key or the new one, never half of either.
 *
 * A rotation (`attestd --rotate-ak`) keeps the new key beside the old one as `ak.key.next`
 * until the rotation is recorded in the audit log, and only then renames it over `ak.key`: a
 * crash in between leaves both, and the daemon's next start decides from the log which one
 * holds (daemon/ak-rotation.ts).
 */
import { constants } from 'node:fs';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AttestdError } from '../../base/errors.js';

/** The file's name in the state folder. */
export const AK_KEY_FILE = 'ak.key';
/** The new key of a rotation not yet complete, beside the old one. */
export const AK_NEXT_SUFFIX = '.next';
const MAX_FILE = 4096;

export interface AkStore {
  /** Where the key lives, for messages. */
  readonly where: string;
  /** The stored bytes, or undefined when no key has been stored yet. */
  read(): Promise<Buffer | undefined>;
  write(bytes: Buffer): Promise<void>;
  /** A rotation's new key, written and flushed beside the stored one. */
  writeNext(bytes: Buffer): Promise<void>;
  /** The rotation's new key, or undefined when there is none. */
  readNext(): Promise<Buffer | undefined>;
  /** The new key replaces the stored one (renamed over it, the folder flushed). */
  commitNext(): Promise<void>;
  /** The new key is thrown away; nothing when there is none. */
  removeNext(): Promise<void>;
}

const unusable = (message: string, cause?: unknown) =>
  new AttestdError('AK_STORE_UNUSABLE', message, cause === undefined ? undefined : { cause });

/** Reads a stored key, refusing a file others could read; undefined when there is none. */
async function readKeyFile(path: string): Promise<Buffer | undefined> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw unusable(`cannot read ${path}: ${(err as Error).message}`, err);
  }
  // A key others could read is a key others could use: refuse it rather than trust it.
  if ((st.mode & 0o077) !== 0) throw unusable(`${path} is readable by others (mode ${(st.mode & 0o777).toString(8)}); it must be 0600`);
  if (!st.isFile() || st.size > MAX_FILE) throw unusable(`${path} is not a stored attestation key (not a file, or over ${MAX_FILE} bytes)`);
  return readFile(path).catch((err: unknown) => {
    throw unusable(`cannot read ${path}: ${(err as Error).message}`, err);
  });
}

/** Writes `bytes` to `file` (0600) and flushes it. */
async function writeFlushed(file: string, bytes: Buffer): Promise<void> {
  const fh = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Flushes the folder, so that a rename or unlink in it survives a crash. */
async function syncDir(path: string): Promise<void> {
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

export function fileAkStore(path: string): AkStore {
  const next = `${path}${AK_NEXT_SUFFIX}`;
  const guarded = async (what: string, job: () => Promise<void>) => {
    try {
      await job();
    } catch (err) {
      throw unusable(`cannot ${what}: ${(err as Error).message}`, err);
    }
  };
  return {
    where: path,
    read: () => readKeyFile(path),
    write: (bytes) => guarded(`store the attestation key in ${path}`, async () => {
      await writeFlushed(`${path}.tmp`, bytes);
      await rename(`${path}.tmp`, path);
      await syncDir(path);
    }),
    writeNext: (bytes) => guarded(`store the new attestation key in ${next}`, async () => {
      await writeFlushed(next, bytes);
      await syncDir(next);
    }),
    readNext: () => readKeyFile(next),
    commitNext: () => guarded(`put ${next} in place of ${path}`, async () => {
      await rename(next, path);
      await syncDir(path);
    }),
    removeNext: () => guarded(`remove ${next}`, async () => {
      try {
        await unlink(next);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      await syncDir(next);
    }),
  };
}
