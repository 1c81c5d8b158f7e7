/**
 * Reference-value files of a policy's intent constraints (`artifacts: { from: FILE }`): lists
 * of allowed artifact digests in sha256sum's format, one "HEX  NAME" a line (the name is
 * optional and ignored; blank lines and lines starting with # are skipped). Pure: the daemon
 * and the CLI read the files (config/policy-file.ts), the auditor takes them from the policy's
 * record, and both fold them in here the same way.
 */
import { PolicyError } from './problem.js';
import type { LoadedPolicy, ReferenceFile, Rule } from './types.js';
import { authorizationFiles, foldIssuerFiles } from './authorization.js';

export const MAX_REFERENCE_BYTES = 1024 * 1024;
export const MAX_REFERENCE_ENTRIES = 65_536;
/** All of a policy's reference files together: with the policy itself they fit one audit record (4 MiB). */
export const MAX_REFERENCE_TOTAL_BYTES = 2 * 1024 * 1024;

/** The files a policy's rules name (reference values, then issuer keys), each once, in the order first named. */
export function referencedFiles(loaded: LoadedPolicy): string[] {
  return [...new Set([...intentFiles(loaded), ...authorizationFilesOf(loaded)])];
}

function authorizationFilesOf(loaded: LoadedPolicy): string[] {
  return loaded.policy.rules.flatMap((r) => authorizationFiles(r.authorization));
}

function intentFiles(loaded: LoadedPolicy): string[] {
  return loaded.policy.rules.flatMap((r) => (r.intent?.artifactsFrom !== undefined ? [r.intent.artifactsFrom] : []));
}

/** The digests of a reference-value file; PolicyError naming the line of the first bad one. */
export function parseReferenceValues(bytes: Buffer, file: string): string[] {
  const fail = (line: number, message: string): never => {
    throw new PolicyError([{ file, line, column: 1, path: '', message }]);
  };
  if (bytes.length > MAX_REFERENCE_BYTES) fail(1, `expected at most ${MAX_REFERENCE_BYTES} bytes, found ${bytes.length}`);
  const lines = bytes.toString('latin1').split('\n');
  const out: string[] = [];
  lines.forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.startsWith('#')) return;
    const m = /^([0-9a-fA-F]{64})(?:[ \t]+\*?.*)?$/.exec(line);
    if (!m) fail(i + 1, 'expected a 64-character hex SHA-256, optionally followed by a name');
    out.push(m![1]!.toLowerCase());
  });
  if (out.length > MAX_REFERENCE_ENTRIES) fail(1, `expected at most ${MAX_REFERENCE_ENTRIES} digests, found ${out.length}`);
  return out;
}

/** The policy with each rule's reference-value digests folded into its allowed artifacts. */
export function foldReferences(loaded: LoadedPolicy, refs: ReferenceFile[]): LoadedPolicy {
  const wanted = referencedFiles(loaded);
  if (wanted.length === 0 && refs.length === 0) return loaded;
  const byFile = new Map<string, string[]>();
  const texts = new Map<string, string>();
  const digestFiles = new Set(intentFiles(loaded));
  const total = refs.reduce((n, r) => n + r.bytes.length, 0);
  if (total > MAX_REFERENCE_TOTAL_BYTES) {
    throw new PolicyError([{ file: loaded.file, line: 1, column: 1, path: '', message: `reference-value files of ${total} bytes in all, over ${MAX_REFERENCE_TOTAL_BYTES}` }]);
  }
  for (const r of refs) {
    if (!wanted.includes(r.file) || texts.has(r.file)) {
      throw new PolicyError([{ file: loaded.file, line: 1, column: 1, path: '', message: `reference-value file ${r.file} is not named by the policy, or given twice` }]);
    }
    // Issuer key files are kept as text; the verifier imports the keys (verify/authorization/).
    texts.set(r.file, r.bytes.toString('utf8'));
    if (digestFiles.has(r.file)) byFile.set(r.file, parseReferenceValues(r.bytes, r.file));
  }
  const unread = authorizationFilesOf(loaded).find((f) => !texts.has(f));
  if (unread !== undefined) throw new PolicyError([{ file: loaded.file, line: 1, column: 1, path: '', message: `issuer key file ${unread} was not read` }]);
  const rules = loaded.policy.rules.map((given): Rule => {
    const rule = given.authorization ? { ...given, authorization: foldIssuerFiles(given.authorization, (f) => texts.get(f)) } : given;
    const from = rule.intent?.artifactsFrom;
    if (from === undefined) return rule;
    const digests = byFile.get(from);
    if (!digests) throw new PolicyError([{ file: loaded.file, line: 1, column: 1, path: '', message: `reference-value file ${from} was not read` }]);
    return { ...rule, intent: { ...rule.intent!, artifacts: [...new Set([...(rule.intent!.artifacts ?? []), ...digests])] } };
  });
  return { ...loaded, policy: { ...loaded.policy, rules }, references: refs };
}
