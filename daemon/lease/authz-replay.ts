/**
 * One grant per authorization: the ids (issuer and jti) already used, remembered across
 * restarts in an append-only file of the state folder, one JSON line each with the id's
 * expiry. An id is taken in memory synchronously, in the grant's checks (so two concurrent
 * requests cannot both use it), and made durable (appended, fsynced) before the grant is
 * answered. At start the file is read, ids past their expiry are dropped, and it is rewritten.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { AttestdError } from '../base/errors.js';
import { AUTHZ_CLOCK_TOLERANCE_S } from '../verify/authorization/verify.js';

export const AUTHZ_IDS_FILE = 'authorization-ids.jsonl';
/** Far more ids than a host grants leases within their authorizations' lifetimes; beyond, grants are refused. */
const MAX_IDS = 1_000_000;

/** What the lease manager needs: whether an id was used, and taking one. */
export interface AuthorizationIds {
  used(key: string): boolean;
  /** Takes the id now (in memory) and resolves once it is durable; rejects when it cannot be. */
  take(key: string, expiresAtMs: number): Promise<void>;
}

/** The key of an authorization id: jti values are unique per issuer. */
export function idKey(issuer: string, id: string): string {
  return JSON.stringify([issuer, id]);
}

/** Ids kept in memory only (tests, and a manager without a state folder). */
export class MemoryAuthorizationIds implements AuthorizationIds {
  protected readonly ids = new Map<string, number>();
  used(key: string): boolean {
    return this.ids.has(key);
  }
  take(key: string, expiresAtMs: number): Promise<void> {
    if (this.ids.size >= MAX_IDS) return Promise.reject(new AttestdError('AUDIT_UNAVAILABLE', 'too many authorization ids remembered'));
    this.ids.set(key, expiresAtMs);
    return Promise.resolve();
  }
}

export class FileAuthorizationIds extends MemoryAuthorizationIds {
  private constructor(private readonly path: string) {
    super();
  }

  /** Reads the file (absent: none used), drops expired ids and rewrites it. A malformed line fails the start. */
  static open(path: string, nowMs: number): FileAuthorizationIds {
    const store = new FileAuthorizationIds(path);
    let text = '';
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const lines = text.split('\n');
    // A last line without its newline is a write torn by a crash: that grant was never answered.
    lines.pop();
    for (const [i, line] of lines.entries()) {
      const entry = parseLine(line);
      if (!entry) throw new AttestdError('AUDIT_UNAVAILABLE', `${path}: line ${i + 1} is not an authorization id`);
      // Kept while the verifier could still accept the authorization (its clock tolerance).
      if (entry.exp + AUTHZ_CLOCK_TOLERANCE_S * 1000 > nowMs) store.ids.set(entry.key, entry.exp);
    }
    store.rewrite();
    return store;
  }

  override async take(key: string, expiresAtMs: number): Promise<void> {
    await super.take(key, expiresAtMs);
    try {
      const fd = openSync(this.path, 'a', 0o600);
      try {
        writeSync(fd, `${JSON.stringify({ key, exp: expiresAtMs })}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      // The id stays taken in memory: failing closed, it is not granted again by this process.
      throw new AttestdError('AUDIT_UNAVAILABLE', `authorization id not recorded: ${(err as Error).message}`);
    }
  }

  private rewrite(): void {
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      for (const [key, exp] of this.ids) writeSync(fd, `${JSON.stringify({ key, exp })}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
  }
}

function parseLine(line: string): { key: string; exp: number } | undefined {
  try {
    const v = JSON.parse(line) as unknown;
    if (v === null || typeof v !== 'object') return undefined;
    const { key, exp } = v as Record<string, unknown>;
    return typeof key === 'string' && typeof exp === 'number' && Number.isFinite(exp) ? { key, exp } : undefined;
  } catch {
    return undefined;
  }
}
