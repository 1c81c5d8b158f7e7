/**
 * A derived lease never outlives its parent: whenever leases end (revoked, expired, released,
 * holder exited), every lease derived from them, at any depth, ends at once with
 * ANCESTOR_ENDED, its reason naming the ancestor that ended. Like any revocation, the
 * descendants leave the table and their watchers are told first; the record follows.
 */
import type { ErrorCode } from '../base/errors.js';
import type { Decisions } from './decisions.js';
import type { LiveLease } from './live-lease.js';
import { revokeWhere } from './revocation.js';
import type { LeaseTable } from './table.js';

/** Every lease in the table derived, at any depth, from the lease `id`. */
export function descendantsOf(table: LeaseTable, id: string): LiveLease[] {
  const all = table.all();
  const found: LiveLease[] = [];
  const ends = new Set([id]);
  // Breadth first: a generation's children are found once the generation is known.
  for (let grew = true; grew;) {
    grew = false;
    for (const l of all) {
      if (l.lineage && ends.has(l.lineage.parentId) && !ends.has(l.id)) {
        ends.add(l.id);
        found.push(l);
        grew = true;
      }
    }
  }
  return found;
}

/** Ends, at once, every descendant of each lease in `ended` (those just ended), naming it as the ancestor. */
export function endDescendants(table: LeaseTable, decisions: Decisions, ended: readonly string[], epoch: number): void {
  for (const id of ended) {
    const heirs = new Set(descendantsOf(table, id));
    if (heirs.size === 0) continue;
    revokeWhere(table, decisions, (l) => heirs.has(l), 'ANCESTOR_ENDED', `ancestor lease ${id} ended`, epoch);
  }
}

/**
 * Revokes the leases `which` selects with `code`, except those that descend from another
 * selected lease: they end through their ancestor, with ANCESTOR_ENDED, as every other
 * descendant of a revoked lease does.
 */
export function revokeWithLineage(table: LeaseTable, decisions: Decisions, which: (l: LiveLease) => boolean,
  code: ErrorCode, reason: string, epoch: number): void {
  const selected = new Set(table.all().filter(which));
  const underSelected = (l: LiveLease): boolean => {
    for (let p = l.lineage && table.get(l.lineage.parentId); p; p = p.lineage && table.get(p.lineage.parentId)) {
      if (selected.has(p)) return true;
    }
    return false;
  };
  const tops = [...selected].filter((l) => !underSelected(l));
  const topSet = new Set(tops);
  revokeWhere(table, decisions, (l) => topSet.has(l), code, reason, epoch);
  endDescendants(table, decisions, tops.map((l) => l.id), epoch);
}
