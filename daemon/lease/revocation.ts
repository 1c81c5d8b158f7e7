/**
 * Revocation, fail-closed: every selected lease, also one whose grant is still being
 * recorded, is marked revoked, its watchers are told and it leaves the table, all at once;
 * the record follows after the fact, because revoking must not wait for the disk.
 */
import type { ErrorCode } from '../base/errors.js';
import type { Decisions } from './decisions.js';
import type { LiveLease } from './live-lease.js';
import { revocationRecord } from './records.js';
import type { LeaseTable } from './table.js';
import { tellEnd } from './watchers.js';

export function revokeWhere(table: LeaseTable, decisions: Decisions, which: (l: LiveLease) => boolean,
  code: ErrorCode, reason: string, epoch: number): void {
  const ids: string[] = [];
  for (const lease of table.all()) {
    if (!which(lease)) continue;
    lease.revoked = { code, reason };
    ids.push(lease.id);
    tellEnd(lease, { kind: 'REVOKED', leaseId: lease.id, reasonCode: code, reason }, decisions.log);
    table.forget(lease);
  }
  if (ids.length === 0) return;
  decisions.log('warn', 'leases revoked', { reason_code: code, reason, count: ids.length });
  decisions.count('revoked', code, ids.length);
  void decisions.recordAfter(revocationRecord(epoch, code, reason, ids), 'revocation not recorded');
}
