/**
 * Reading a policy file for the daemon and the CLI: bounded, a regular file only, then the
 * pure parser (policy/parse.ts), which the offline verifier shares.
 */
import { open } from 'node:fs/promises';
import { AttestdError } from '../base/errors.js';
import { MAX_POLICY_BYTES, parsePolicyBytes } from '../policy/parse.js';
import type { LoadedPolicy } from '../policy/types.js';
import { foldReferences, MAX_REFERENCE_BYTES, referencedFiles } from '../policy/reference-values.js';
import { dirname, resolve } from 'node:path';
import { PolicyError } from '../policy/problem.js';
import { checkIssuerKeys } from '../verify/authorization/verify.js';

async function readCapped(path: string, cap = MAX_POLICY_BYTES): Promise<Buffer> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw new AttestdError('POLICY_UNREADABLE', `${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new AttestdError('POLICY_UNREADABLE', `${path}: not a regular file`);
    if (info.size > cap) {
      throw new AttestdError('POLICY_UNREADABLE', `${path}: larger than ${cap} bytes`);
    }
    // Read one byte past the cap, so a file that grew since stat() is still refused.
    const buf = Buffer.alloc(cap + 1);
    let length = 0;
    while (length < buf.length) {
      const { bytesRead } = await handle.read(buf, length, buf.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > cap) {
      throw new AttestdError('POLICY_UNREADABLE', `${path}: larger than ${cap} bytes`);
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
 * Reads and validates a policy file and the reference-value files it names. POLICY_UNREADABLE
 * when a file cannot be opened or read, is not a regular file, or exceeds 1 MiB; PolicyError (POLICY_INVALID) when its
 * content is not a valid policy, including content that is not UTF-8.
 */
export async function loadPolicyFile(path: string): Promise<LoadedPolicy> {
  const loaded = parsePolicyBytes(await readCapped(path), path);
  // Reference-value files (intent artifacts.from), relative to the policy's folder, read with
  // the same care and folded in by the pure code the auditor runs on the recorded copies.
  const refs = [];
  for (const file of referencedFiles(loaded)) {
    refs.push({ file, bytes: await readCapped(resolve(dirname(path), file), MAX_REFERENCE_BYTES) });
  }
  return withIssuerKeysChecked(foldReferences(loaded, refs));
}

/** Every issuer key of every rule imports, or the policy is refused now rather than every grant later. */
function withIssuerKeysChecked(loaded: LoadedPolicy): LoadedPolicy {
  loaded.policy.rules.forEach((rule, i) => {
    try {
      if (rule.authorization) checkIssuerKeys(rule.authorization);
    } catch (err) {
      throw new PolicyError([{ file: loaded.file, line: 1, column: 1, path: `rules[${i}].authorization.issuers`, message: (err as Error).message }]);
    }
  });
  return loaded;
}
