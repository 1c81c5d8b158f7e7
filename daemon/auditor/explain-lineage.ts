/**
 * The lineage part of a lease's story (`attestctl audit explain`): the leases it was derived
 * from, parent first up to the acquired one, and every lease derived from it at any depth, as
 * the log's grants name them. Pure.
 */
export interface LineageStory {
  /** 0 for an acquired lease. */
  depth: number;
  /** Parent first, then its parent, up to the acquired lease at the root. */
  ancestors: string[];
  /** Every lease derived from this one, at any depth, in the order they were granted. */
  descendants: { leaseId: string; parentLeaseId: string; depth: number }[];
}

export class LineageIndex {
  /** Each derived lease's parent and depth, in grant order. */
  private readonly parents = new Map<string, { parent: string; depth: number }>();

  granted(leaseId: string, parentLeaseId: string | null | undefined, depth: number | null | undefined): void {
    if (parentLeaseId && !this.parents.has(leaseId)) this.parents.set(leaseId, { parent: parentLeaseId, depth: depth ?? 0 });
  }

  /** The story of `leaseId`; undefined for an acquired lease nothing was derived from. */
  story(leaseId: string): LineageStory | undefined {
    const ancestors: string[] = [];
    for (let at = this.parents.get(leaseId); at && ancestors.length <= this.parents.size; at = this.parents.get(at.parent)) ancestors.push(at.parent);
    const under = new Set([leaseId]);
    const descendants: LineageStory['descendants'] = [];
    // Grant order puts every parent before its children, so one pass finds them all.
    for (const [id, p] of this.parents) {
      if (!under.has(p.parent)) continue;
      under.add(id);
      descendants.push({ leaseId: id, parentLeaseId: p.parent, depth: p.depth });
    }
    if (ancestors.length === 0 && descendants.length === 0) return undefined;
    return { depth: this.parents.get(leaseId)?.depth ?? 0, ancestors, descendants };
  }
}
