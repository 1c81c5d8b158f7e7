/**
 * Where the attestation key is kept between restarts: one file in the daemon's state folder,
 * readable by its owner only (it holds the AK's authValue). Written whole under a temporary
 * name, flushed, then renamed over the old one and the folder flushed, so a crash leaves the
 * old key or the new one, never half of either.
 */
import { constants } from 'node:fs';
import { open, readFile, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AttestdError } from '../../base/errors.js';

/** The file's name in the state folder. */
export const AK_KEY_FILE = 'ak.key';
const MAX_FILE = 4096;

export interface AkStore {
  /** Where the key lives, for messages. */
  readonly where: string;
  /** The stored bytes, or undefined when no key has been stored yet. */
  read(): Promise<Buffer | undefined>;
  write(bytes: Buffer): Promise<void>;
}

const unusable = (message: string, cause?: unknown) =>
  new AttestdError('AK_STORE_UNUSABLE', message, cause === undefined ? undefined : { cause });

export function fileAkStore(path: string): AkStore {
  return {
    where: path,
    async read() {
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
    },
    async write(bytes) {
      const tmp = `${path}.tmp`;
      try {
        const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
        try {
          await fh.chmod(0o600);
          await fh.writeFile(bytes);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, path);
        const dir = await open(dirname(path), 'r');
        try {
          await dir.sync();
        } finally {
          await dir.close();
        }
      } catch (err) {
        throw unusable(`cannot store the attestation key in ${path}: ${(err as Error).message}`, err);
      }
    },
  };
}
