/**
 * Connections counted per peer uid, so one user (root included) cannot take every slot of the
 * global connection cap and lock all other users out. A slot is taken at accept and given back
 * exactly once when that connection closes.
 */
export class UidQuota {
  private readonly counts = new Map<number, number>();

  constructor(private readonly perUid: number) {}

  /** Takes a slot for `uid`; false when the uid already holds its cap. */
  tryTake(uid: number): boolean {
    const n = this.counts.get(uid) ?? 0;
    if (n >= this.perUid) return false;
    this.counts.set(uid, n + 1);
    return true;
  }

  give(uid: number): void {
    const n = this.counts.get(uid) ?? 0;
    // Entries at zero are dropped: the map grows with live uids, not with every uid ever seen.
    if (n <= 1) this.counts.delete(uid);
    else this.counts.set(uid, n - 1);
  }

  held(uid: number): number {
    return this.counts.get(uid) ?? 0;
  }
}
