/**
 * Lease ids filed under coarse time buckets, so the periodic sweep touches only leases that
 * are due rather than every live lease (tens of thousands on a busy host).
 */
export class TimeBuckets {
  private readonly buckets = new Map<number, Set<string>>();
  private readonly where = new Map<string, number>();

  constructor(private readonly widthMs = 100) {}

  /** Files `id` at time `atMs` (moving it if it was filed before). */
  set(id: string, atMs: number): void {
    this.delete(id);
    const b = Math.ceil(atMs / this.widthMs);
    let set = this.buckets.get(b);
    if (!set) this.buckets.set(b, (set = new Set()));
    set.add(id);
    this.where.set(id, b);
  }

  delete(id: string): void {
    const b = this.where.get(id);
    if (b === undefined) return;
    this.where.delete(id);
    const set = this.buckets.get(b);
    set?.delete(id);
    if (set?.size === 0) this.buckets.delete(b);
  }

  /** Removes and returns every id filed at or before `nowMs` (bucket granularity: a little early at most). */
  takeDue(nowMs: number): string[] {
    const limit = Math.floor(nowMs / this.widthMs);
    const due: string[] = [];
    for (const [b, set] of this.buckets) {
      if (b > limit) continue;
      for (const id of set) {
        due.push(id);
        this.where.delete(id);
      }
      this.buckets.delete(b);
    }
    return due;
  }

  clear(): void {
    this.buckets.clear();
    this.where.clear();
  }
}
