/**
 * Parsed certificates and CRLs, kept by the SHA-256 of their DER: the ARK, ASK and PCK CAs the
 * verifiers see every epoch are decoded once per process, not once per epoch. The key is the
 * digest of every byte parsed and the value depends on nothing else, so a hit is the same
 * answer a fresh parse would give. Only successful parses are kept: hostile input cannot fill
 * the cache with failures, and a bounded, least-recently-used eviction keeps a stream of new
 * certificates from growing memory. Cached values are shared; callers treat them as read-only.
 */
import { createHash } from 'node:crypto';

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export class DigestCache<V> {
  private readonly entries = new Map<string, V>();

  constructor(readonly capacity: number) {}

  get(digest: string): V | undefined {
    const v = this.entries.get(digest);
    if (v !== undefined) {
      // Map keeps insertion order: re-inserting marks the entry most recently used.
      this.entries.delete(digest);
      this.entries.set(digest, v);
    }
    return v;
  }

  set(digest: string, value: V): void {
    this.entries.delete(digest);
    this.entries.set(digest, value);
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }
}

const derived = new WeakMap<object, Map<string, unknown>>();

/**
 * A value computed from `owner` (a cached certificate, or its extension map) once and kept
 * with it, such as decoded vendor extensions. Keyed by object identity: a copy made with
 * spread syntax is another object and is computed afresh. A computation that throws is not
 * kept.
 */
export function memo<T>(owner: object, key: string, compute: () => T): T {
  let values = derived.get(owner);
  if (values?.has(key)) return values.get(key) as T;
  const value = compute();
  if (!values) derived.set(owner, (values = new Map()));
  values.set(key, value);
  return value;
}
