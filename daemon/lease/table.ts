/**
 * The live leases by id, with the two time indexes the sweep works from: when each granted
 * lease expires, and when its holder is to be warned. A lease whose grant is still being
 * recorded is in the table (so revocation reaches it) but not yet in the indexes.
 */
import type { LiveLease } from './live-lease.js';
import { TimeBuckets } from './time-buckets.js';

export class LeaseTable {
  private readonly leases = new Map<string, LiveLease>();
  private readonly expiries = new TimeBuckets();
  private readonly warnings = new TimeBuckets();

  get size(): number {
    return this.leases.size;
  }

  get(id: string): LiveLease | undefined {
    return this.leases.get(id);
  }

  has(id: string): boolean {
    return this.leases.has(id);
  }

  add(lease: LiveLease): void {
    this.leases.set(lease.id, lease);
  }

  /** Every lease, as a copy: the caller may take leases out while it walks the list. */
  all(): LiveLease[] {
    return [...this.leases.values()];
  }

  /** Files a granted lease's expiry, and its warning a quarter of its term ahead. */
  schedule(lease: LiveLease): void {
    this.expiries.set(lease.id, lease.expiresAtMs);
    this.warnings.set(lease.id, lease.expiresAtMs - (lease.expiresAtMs - lease.issuedAtMs) / 4);
  }

  /** Takes a lease out of the table and both indexes. */
  forget(lease: LiveLease): void {
    this.leases.delete(lease.id);
    this.expiries.delete(lease.id);
    this.warnings.delete(lease.id);
  }

  /** Ids whose warning is due, taken out of the warning index (they may have left the table since). */
  takeDueWarnings(nowMs: number): string[] {
    return this.warnings.takeDue(nowMs);
  }

  /** Ids whose expiry is due, taken out of the expiry index (they may have left the table since). */
  takeDueExpiries(nowMs: number): string[] {
    return this.expiries.takeDue(nowMs);
  }
}
