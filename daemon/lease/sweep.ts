/**
 * The periodic sweep's work on the table: warn holders whose lease is in the last quarter of
 * its current span, and expire leases past their time (gone at once, recorded after the fact).
 */
import type { Decisions } from './decisions.js';
import type { LiveLease } from './live-lease.js';
import { leaseView } from './live-lease.js';
import { expiryRecord } from './records.js';
import type { LeaseTable } from './table.js';
import { tell, tellEnd } from './watchers.js';

/** Tells the holders of leases whose warning is due that the lease is expiring, once per span. */
export function warnExpiring(table: LeaseTable, decisions: Decisions, nowMs: number): void {
  for (const id of table.takeDueWarnings(nowMs)) {
    const lease = table.get(id);
    if (!lease || lease.expiringSent || nowMs >= lease.expiresAtMs) continue;
    lease.expiringSent = true;
    tell(lease, { kind: 'EXPIRING', leaseId: lease.id, lease: leaseView(lease) }, decisions.log);
  }
}

/** Ends the leases whose time is up; the record names the epoch in force. Returns their ids. */
export function expireDue(table: LeaseTable, decisions: Decisions, nowMs: number, epoch: number): string[] {
  const expired: LiveLease[] = [];
  for (const id of table.takeDueExpiries(nowMs)) {
    const lease = table.get(id);
    if (lease) expired.push(lease);
  }
  if (expired.length === 0) return [];
  decisions.count('expired', '', expired.length);
  for (const lease of expired) {
    table.forget(lease);
    tellEnd(lease, { kind: 'EXPIRED', leaseId: lease.id }, decisions.log);
  }
  const ids = expired.map((l) => l.id);
  void decisions.recordAfter(expiryRecord(epoch, ids), 'lease expiry not recorded');
  return ids;
}
