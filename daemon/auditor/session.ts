/** What the verifier knows of one daemon session while reading its records. */
import type { KeyObject } from 'node:crypto';
import { ed25519PublicKey } from '../verify/lease-token.js';
import type { LoadedPolicy } from '../policy/types.js';
import { RecordCarry } from '../appraisal/epoch-record.js';
import { LineageTracker } from './lease-lineage.js';

export interface EpochSeen {
  pass: boolean;
  validUntilMs: number;
  policyDigest: Buffer;
  underUpdateWindow: boolean;
}

export class Session {
  readonly keyObject: KeyObject;
  /** A quote from the trusted AK carried a binding over this key. */
  bound = false;
  /** First record signed with this key. */
  firstSigned: number | undefined;
  /** The session issued tokens: its key must be bound for them to mean anything. */
  needsBinding = false;
  policy: LoadedPolicy | undefined;
  lastEpoch = 0;
  current = 0;
  readonly epochs = new Map<number, EpochSeen>();
  /** Epoch each lease was granted under, and leases a reset ended. */
  readonly leaseEpoch = new Map<string, number>();
  readonly deadLeases = new Set<string>();
  /** What the session's epoch records carry from one to the next, moved forward as the daemon did. */
  readonly carry = new RecordCarry();
  /** The session's leases as lineage sees them (lease-lineage.ts): a restart ends every lease. */
  readonly lineage = new LineageTracker();

  constructor(readonly index: number, readonly key: Buffer, readonly startSeq: number) {
    this.keyObject = ed25519PublicKey(key);
  }
}
