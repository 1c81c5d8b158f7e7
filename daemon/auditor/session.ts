/** What the verifier knows of one daemon session while reading its records. */
import type { KeyObject } from 'node:crypto';
import { ed25519PublicKey } from '../verify/lease-token.js';
import type { LoadedPolicy } from '../policy/types.js';
import type { ClockInfo } from '../verify/tpm-attest.js';
import type { ImaState } from '../appraisal/source-verdicts.js';

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
  /** Clock of the latest verified quote, for reset detection as the daemon does it. */
  clock: ClockInfo | undefined;
  /** Epoch each lease was granted under, and leases a reset ended. */
  readonly leaseEpoch = new Map<string, number>();
  readonly deadLeases = new Set<string>();
  /** The latest full artifacts recorded in this session, and the IMA replay so far. */
  eventLog: Buffer | undefined;
  certTable: Buffer | undefined;
  ima: ImaState | undefined;

  constructor(readonly index: number, readonly key: Buffer, readonly startSeq: number) {
    this.keyObject = ed25519PublicKey(key);
  }
}
