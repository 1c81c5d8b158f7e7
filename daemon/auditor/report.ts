/** Results of the offline verifier: the first failure, or a summary. */

/** Which check failed, in the order the verifier applies them. Stable: part of --json output. */
export type Check =
  | 'framing' | 'sequence' | 'record' | 'checkpoint-root' | 'checkpoint-signature' | 'session-chain'
  | 'quote' | 'epoch-signature' | 'reappraisal' | 'lease-token' | 'lease-validity' | 'lease-intent' | 'lease-lineage' | 'lease-authorization'
  | 'cvm-roots' | 'ak-certificate'
  | 'ak-rotation';

export interface Where {
  seq: number;
  segment?: string;
  offset?: number;
}

export class AuditFailure extends Error {
  constructor(readonly check: Check, message: string, readonly where: Where) {
    super(message);
    this.name = 'AuditFailure';
  }
}

export interface Summary {
  records: number;
  sessions: number;
  epochs: number;
  passingEpochs: number;
  grants: number;
  renewals: number;
  /** Refused requests: a record of one counts one, a count of refusals (DenialRepeats) its count. */
  denials: number;
  /** Records of refusals, whether of one or a count. */
  denialRecords: number;
  revocations: number;
  checkpoints: number;
  recoveries: number;
  /** AK rotations followed (each certified by the AK trusted before it). */
  akRotations: number;
  firstTimeMs: number;
  lastTimeMs: number;
  /** Hex RFC 6962 root over every record. */
  root: string;
  /** Records after the last checkpoint: not yet covered by a signature (a live log has some). */
  uncheckpointedTail: number;
}
