/**
 * Parsing a policy: bytes -> YAML -> schema and semantic checks -> typed Policy. Either
 * the whole file is valid and a LoadedPolicy comes back, or a PolicyError lists every
 * problem found, each located by file, line, column and field path. There is no partial
 * policy and no default filled in for a broken field.
 */
import { createHash } from 'node:crypto';
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

/**
 * Parses policy file bytes: UTF-8 (a byte-order mark is kept, so the text re-encodes to these
 * bytes), then as parsePolicy. The digest is over the bytes. Throws PolicyError.
 */
export function parsePolicyBytes(bytes: Uint8Array, file: string): LoadedPolicy {
  if (bytes.length > MAX_POLICY_BYTES) {
    throw new PolicyError([{ file, line: 1, column: 1, path: '', message: `expected a policy of at most ${MAX_POLICY_BYTES} bytes, found ${bytes.length}` }]);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (err) {
    throw new PolicyError([{ file, line: 1, column: 1, path: '', message: 'expected UTF-8 text' }], { cause: err });
  }
  return parseWithDigest(text, file, createHash('sha256').update(bytes).digest());
}
