/**
 * Appraises IMA entries against an allowlist of file digests. Pure: the entries must come
 * from parseImaList (template hashes checked) and, to mean anything, from a list replayed
 * against a quote. The first entry, boot_aggregate, is not a file; it is returned for the
 * caller to check against PCRs 0-7 (see boot-aggregate.ts).
 */
import { AttestdError } from '../../base/errors.js';
import { formatFileDigest, type ImaEntry } from './parse.js';
import { printable } from './text.js';

export interface ImaAllowlist {
  /** path -> allowed digests, or digests each optionally tied to a path (none: any path). */
  digests: ReadonlyMap<string, ReadonlySet<string>> | readonly { path?: string; digest: string }[];
  /** Paths not appraised: "/tmp/" covers what is under /tmp, "/tmp" covers /tmp and under it. */
  excludes: readonly string[];
  /** A path the allowlist does not name passes; a named path must still match its digests. */
  allowUnknownPaths?: boolean;
  /** Measurement violations (open-writers, ToMToU) pass instead of failing. */
  allowViolations?: boolean;
}

export interface ImaAllowlistResult {
  ok: boolean;
  /** One reason per failing entry, up to `maxReasons`; `failures` counts them all. */
  reasons: string[];
  failures: number;
  appraised: number;
  excluded: number;
  /** The boot_aggregate entry (line 1), when `entries` holds it. */
  bootAggregate?: ImaEntry;
}

export const BOOT_AGGREGATE_NAME = 'boot_aggregate';

/** Compiled once so that appraising a long list is one map lookup per entry. */
export class CompiledImaAllowlist {
  private readonly byPath = new Map<string, Set<string>>();
  private readonly anyPath = new Set<string>();
  private readonly excludes: string[];
  readonly allowUnknownPaths: boolean;
  readonly allowViolations: boolean;

  constructor(allowlist: ImaAllowlist) {
    const pathSet = (path: string): Set<string> => {
      if (typeof path !== 'string' || path.length === 0) {
        throw new AttestdError('INVALID_ARGUMENT', 'allowlist path must be a non-empty string');
      }
      let set = this.byPath.get(path);
      if (set === undefined) this.byPath.set(path, (set = new Set()));
      return set;
    };
    const add = (path: string | undefined, digest: string): void => {
      const key = normaliseDigest(digest);
      if (path === undefined) this.anyPath.add(key);
      else pathSet(path).add(key);
    };
    if (allowlist.digests instanceof Map) {
      for (const [path, digests] of allowlist.digests) {
        // A path listed with no digests is still known: it fails rather than counting as unknown.
        pathSet(path);
        for (const d of digests) add(path, d);
      }
    } else {
      for (const item of allowlist.digests as readonly { path?: string; digest: string }[]) add(item.path, item.digest);
    }
    for (const e of allowlist.excludes) {
      if (typeof e !== 'string' || e.length === 0) throw new AttestdError('INVALID_ARGUMENT', 'an exclude must be a non-empty string');
    }
    this.excludes = [...allowlist.excludes];
    this.allowUnknownPaths = allowlist.allowUnknownPaths === true;
    this.allowViolations = allowlist.allowViolations === true;
  }

  isExcluded(path: string): boolean {
    for (const e of this.excludes) {
      if (path === e) return true;
      if (path.length > e.length && path.startsWith(e) && (e.endsWith('/') || path.charCodeAt(e.length) === 0x2f)) return true;
    }
    return false;
  }

  /** Why the entry fails, or undefined when it passes. */
  check(entry: ImaEntry): string | undefined {
    const where = `IMA entry ${entry.line} ${printable(entry.pathBytes)}`;
    if (!entry.pathIsUtf8) return `${where}: file name is not valid UTF-8`;
    if (this.isExcluded(entry.path)) return undefined;
    if (entry.violation) return this.allowViolations ? undefined : `${where}: measurement violation`;
    const full = formatFileDigest(entry);
    const bare = entry.digest.toString('hex');
    if (this.anyPath.has(full) || this.anyPath.has(bare)) return undefined;
    const allowed = this.byPath.get(entry.path);
    if (allowed === undefined) return this.allowUnknownPaths ? undefined : `${where} ${full} not in allowlist`;
    if (allowed.has(full) || allowed.has(bare)) return undefined;
    return `${where} ${full} not in allowlist`;
  }
}

/** "sha256:AB.." -> "sha256:ab.."; bare hex stays bare and matches any algorithm of its size. */
function normaliseDigest(digest: string): string {
  if (typeof digest !== 'string') throw new AttestdError('INVALID_ARGUMENT', 'allowlist digest must be a string');
  const lower = digest.toLowerCase();
  const colon = lower.indexOf(':');
  const hex = colon === -1 ? lower : lower.slice(colon + 1);
  if (hex.length === 0 || hex.length % 2 !== 0 || hex.length > 128 || !/^[0-9a-f]+$/.test(hex)) {
    throw new AttestdError('INVALID_ARGUMENT', `allowlist digest "${printable(digest, 40)}" is not hex`);
  }
  return lower;
}

/**
 * Appraises every entry except the boot_aggregate on line 1 (returned instead). An entry
 * passes when its path is excluded, or its digest is allowed for its path or for any path,
 * or its path is unknown and `allowUnknownPaths`. Violations fail unless `allowViolations`;
 * names that are not UTF-8 always fail, since no allowlist path can name them exactly.
 */
export function evaluateImaAllowlist(
  entries: readonly ImaEntry[],
  allowlist: ImaAllowlist | CompiledImaAllowlist,
  options: { maxReasons?: number } = {},
): ImaAllowlistResult {
  const compiled = allowlist instanceof CompiledImaAllowlist ? allowlist : new CompiledImaAllowlist(allowlist);
  const maxReasons = options.maxReasons ?? 1000;
  const result: ImaAllowlistResult = { ok: true, reasons: [], failures: 0, appraised: 0, excluded: 0 };
  for (const entry of entries) {
    if (entry.line === 1 && entry.path === BOOT_AGGREGATE_NAME && entry.pathIsUtf8) {
      result.bootAggregate = entry;
      continue;
    }
    result.appraised++;
    if (entry.pathIsUtf8 && compiled.isExcluded(entry.path)) result.excluded++;
    const reason = compiled.check(entry);
    if (reason === undefined) continue;
    result.ok = false;
    result.failures++;
    if (result.reasons.length < maxReasons) result.reasons.push(reason);
  }
  if (result.failures > result.reasons.length) {
    result.reasons.push(`and ${result.failures - result.reasons.length} more IMA entries not in allowlist`);
  }
  return result;
}
