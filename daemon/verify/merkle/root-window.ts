/**
 * The Merkle tree as the verifier rebuilds it, with the states of the last few thousand
 * sizes kept, so a checkpoint or an epoch binding that names a slightly earlier size (records
 * appended between reading the root and writing the record) can be checked without a second
 * pass over the log.
 */
import { CompactRange } from './tree.js';

export class RootWindow {
  private readonly tree = new CompactRange();
  /** Ring of recent states, indexed by size modulo the window. */
  private readonly states: ({ size: number; hashes: Buffer[] } | undefined)[];

  constructor(private readonly window = 8192) {
    this.states = new Array(window);
  }

  get size(): number {
    return this.tree.size;
  }

  append(payload: Uint8Array): void {
    this.tree.append(payload);
    this.states[this.tree.size % this.window] = this.tree.state();
  }

  root(): Buffer {
    return this.tree.root();
  }

  /** The root at an earlier size, or undefined when it is outside the window. */
  rootAt(size: number): Buffer | undefined {
    if (size === this.tree.size) return this.tree.root();
    if (size === 0) return new CompactRange().root();
    const s = this.states[size % this.window];
    return s && s.size === size ? CompactRange.fromState(s.size, s.hashes).root() : undefined;
  }
}
