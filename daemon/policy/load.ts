/**
 * Reading a policy: bytes -> YAML -> schema and semantic checks -> typed Policy. Either
 * the whole file is valid and a LoadedPolicy comes back, or a PolicyError lists every
 * problem found, each located by file, line, column and field path. There is no partial
 * policy and no default filled in for a broken field.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { AttestdError } from '../errors.js';
import { buildPolicy } from './build.js';
import { semanticProblems } from './checks.js';
import { v2Problems } from './checks-v2.js';
import { readYaml } from './document.js';
import type { Located } from './document.js';
import { explain } from './explain.js';
import { PolicyError, formatProblems } from './problem.js';
import { schemaErrors } from './schema.js';
import type { LoadedPolicy, PolicyProblem } from './types.js';

export { PolicyError, formatProblems };

/** A policy is a few kilobytes; the cap bounds parser work on a hostile or wrong file. */
export const MAX_POLICY_BYTES = 1024 * 1024;

function problemsIn(file: string, located: Located[]): PolicyProblem[] {
  return located.map((p) => ({ file, line: p.line, column: p.column, path: p.path, message: p.message }));
}

function parseWithDigest(text: string, file: string, digest: Buffer): LoadedPolicy {
  const tree = readYaml(text);
  if (tree.problems.length > 0) throw new PolicyError(problemsIn(file, tree.problems));

  const located: Located[] = [];
  for (const err of schemaErrors(tree.value)) {
    const problem = explain(err, tree);
    if (problem !== undefined) located.push(problem);
  }
  located.push(...semanticProblems(tree.value, tree), ...v2Problems(tree.value, tree));
  if (located.length > 0) throw new PolicyError(problemsIn(file, located));

  const policy = buildPolicy(tree.value as Record<string, unknown>);
  return { policy, file, text, digest };
}

/**
 * Parses and validates policy text. `file` names the source in problems. The digest is
 * SHA-256 over the UTF-8 encoding of `text`, which equals the file bytes when the text
 * was read from a UTF-8 file. Throws PolicyError (code POLICY_INVALID).
 */
export function parsePolicy(text: string, file: string): LoadedPolicy {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > MAX_POLICY_BYTES) {
    throw new PolicyError([
      { file, line: 1, column: 1, path: '', message: `expected a policy of at most ${MAX_POLICY_BYTES} bytes, found ${bytes.length}` },
    ]);
  }
  return parseWithDigest(text, file, createHash('sha256').update(bytes).digest());
}

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
  const bytes = await readCapped(path);
  let text: string;
  try {
    // ignoreBOM keeps a byte-order mark in the text, so the text re-encodes to these bytes.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (err) {
    throw new PolicyError([{ file: path, line: 1, column: 1, path: '', message: 'expected UTF-8 text' }], { cause: err });
  }
  return parseWithDigest(text, path, createHash('sha256').update(bytes).digest());
}
