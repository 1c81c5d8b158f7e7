/**
 * Reading a policy file for the daemon and the CLI: bounded, a regular file only, then the
 * pure parser (policy/parse.ts), which the offline verifier shares.
 */
import { open } from 'node:fs/promises';
import { AttestdError } from '../base/errors.js';
import { MAX_POLICY_BYTES, parsePolicyBytes } from '../policy/parse.js';
import type { LoadedPolicy } from '../policy/types.js';

async function readCapped(path: string): Promise<Buffer> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw new AttestdError('POLICY_UNREADABLE', `${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new AttestdError('POLICY_UNREADABLE', `${path}: not a regular file`);
    if (info.size > MAX_POLICY_BYTES) {
      throw new AttestdError('POLICY_UNREADABLE', `${path}: larger than ${MAX_POLICY_BYTES} bytes`);
    }
    // Read one byte past the cap, so a file that grew since stat() is still refused.
    const buf = Buffer.alloc(MAX_POLICY_BYTES + 1);
    let length = 0;
    while (length < buf.length) {
      const { bytesRead } = await handle.read(buf, length, buf.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > MAX_POLICY_BYTES) {
      throw new AttestdError('POLICY_UNREADABLE', `${path}: larger than ${MAX_POLICY_BYTES} bytes`);
    }
    return buf.subarray(0, length);
  } catch (err) {
    if (err instanceof AttestdError) throw err;
    throw new AttestdError('POLICY_UNREADABLE', `${path}: ${(err as Error).message}`, { cause: err });
  } finally {
    await handle.close();
  }
}

/**
 * Reads and validates a policy file. POLICY_UNREADABLE when the file cannot be opened or
 * read, is not a regular file, or exceeds 1 MiB; PolicyError (POLICY_INVALID) when its
 * content is not a valid policy, including content that is not UTF-8.
 */
export async function loadPolicyFile(path: string): Promise<LoadedPolicy> {
  return parsePolicyBytes(await readCapped(path), path);
}
