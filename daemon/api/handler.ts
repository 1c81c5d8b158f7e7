import type { Connection, ResponseProps } from './connection.js';
import type { LeaseManager } from '../lease/manager.js';
import type { HostStatus } from './host-status.js';
import type { VerifiedClaims } from '../verify/lease-token.js';

/** What handlers may use: the lease manager and read-only views of the daemon. */
export interface ApiContext {
  leases: LeaseManager;
  status: Pick<HostStatus, 'report'>;
  verifyToken(token: Uint8Array, signature: Uint8Array): VerifiedClaims | undefined;
  /** Enrollment: TPM2_ActivateCredential with the daemon's AK, for a credential made for `akName`. */
  /** Attestation results (EAR in an evidence bundle) for live leases. */
  results: { make(lease: ReturnType<LeaseManager['describe']>, nonce: Buffer | undefined): Promise<string> };
  enroll: { activateCredential(ekKind: 'rsa' | 'ecc', akName: Buffer, credentialBlob: Buffer, secret: Buffer): Promise<Buffer> };
}

export type Handler<Req> = (conn: Connection, req: Req, ctx: ApiContext, requestId: number) => Promise<Omit<ResponseProps, 'id'>>;
