/**
 * The offline checks of lineage (check `lease-lineage`). Pure. Of every grant or renewal: the
 * record's parent, root and depth are the token's; an acquired lease has none. Of a derived
 * lease: its parent was granted in the same session and had not ended (nor expired) when it was
 * issued, has the same rule, at least its scopes and GPUs, its root, one depth less, and an
 * expiry no earlier. And a lease never outlives an ancestor: once a lease ends, each of its
 * descendants must end before the session records another grant or renewal.
 */
import type { attestd } from '../gen/proto.js';

interface Tracked {
  rule: string;
  scopes: string[];
  gpus: string[];
  expiresAtMs: number;
  depth: number;
  root: string;
  parent: string;
  ended: boolean;
}

const Kind = { GRANT: 1, RENEW: 3, RELEASE: 5, REVOKE: 6, EXPIRE: 7 } as const;

export class LineageTracker {
  private readonly leases = new Map<string, Tracked>();
  /** Leases whose ancestor ended while they still lived, and that ancestor. */
  private readonly owed = new Map<string, string>();

  /**
   * Why a grant or renewal breaks lineage, or undefined; remembers the lease as issued.
   * `maxDepth`: the lineage.max_depth of the token's rule under the policy it names, when the
   * log holds that policy.
   */
  issued(d: attestd.audit.v1.LeaseDecision, claims: attestd.lease.v1.LeaseToken, maxDepth?: number): string | undefined {
    const [first] = this.owed;
    if (first) return `lease ${first[0]} outlived its ancestor ${first[1]}`;
    const id = d.leaseId;
    const parent = claims.parentLeaseId ?? '';
    const depth = claims.depth ?? 0;
    if ((d.parentLeaseId ?? '') !== parent || (d.rootLeaseId ?? '') !== (claims.rootLeaseId ?? '') || (d.depth ?? 0) !== depth) {
      return `lease ${id}: recorded lineage differs from its token's`;
    }
    const lease: Tracked = { rule: claims.rule, scopes: claims.scopes, gpus: claims.gpus, expiresAtMs: Number(claims.expiresAtMs), depth,
      root: claims.rootLeaseId ?? '', parent, ended: false };
    const problem = parent === '' && depth === 0 && lease.root === '' ? undefined : this.derivedProblem(id, lease, Number(claims.issuedAtMs));
    if (problem) return problem;
    if (maxDepth !== undefined && depth > maxDepth) return `lease ${id}: depth ${depth} beyond rule ${claims.rule}'s lineage.max_depth ${maxDepth}`;
    const before = this.leases.get(id);
    if (before && (before.parent !== parent || before.depth !== depth || before.root !== lease.root)) return `lease ${id}: renewed with another lineage`;
    this.leases.set(id, lease);
    return undefined;
  }

  private derivedProblem(id: string, child: Tracked, issuedAtMs: number): string | undefined {
    const p = this.leases.get(child.parent);
    if (!p) return `lease ${id}: parent lease ${child.parent} was not granted in this session`;
    if (p.ended || p.expiresAtMs <= issuedAtMs) return `lease ${id}: issued after its parent lease ${child.parent} ended`;
    if (child.depth !== p.depth + 1) return `lease ${id}: depth ${child.depth} under a parent of depth ${p.depth}`;
    if (child.root !== (p.depth === 0 ? child.parent : p.root)) return `lease ${id}: root ${child.root} is not its parent's`;
    if (child.rule !== p.rule) return `lease ${id}: rule ${child.rule} differs from its parent's ${p.rule}`;
    if (child.scopes.some((s) => !p.scopes.includes(s)) || child.gpus.some((g) => !p.gpus.includes(g))) {
      return `lease ${id}: scopes or GPUs beyond its parent's`;
    }
    if (child.expiresAtMs > p.expiresAtMs) return `lease ${id}: expires after its parent lease ${child.parent}`;
    return undefined;
  }

  /** A release, revocation or expiry: the leases end, and their live descendants are owed an end. */
  ended(d: attestd.audit.v1.LeaseDecision): void {
    const ids = d.kind === Kind.RELEASE ? [d.leaseId] : d.kind === Kind.REVOKE || d.kind === Kind.EXPIRE ? d.leaseIds : [];
    for (const id of ids) {
      this.owed.delete(id);
      const l = this.leases.get(id);
      if (l) l.ended = true;
    }
    for (const id of ids) this.owe(id, this.owed.get(id) ?? id);
  }

  private owe(ended: string, ancestor: string): void {
    for (const [id, l] of this.leases) {
      if (l.parent !== ended || this.owed.has(id)) continue;
      if (!l.ended) this.owed.set(id, ancestor);
      this.owe(id, ancestor);
    }
  }
}
