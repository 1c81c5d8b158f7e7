/**
 * What the manager writes about a lease: its signed token, and the audit records of each
 * decision (attestd.audit.v1.LeaseDecision). Pure shaping; where the records go and when is
 * decisions.ts.
 */
import type { AttestdError, ErrorCode } from '../base/errors.js';
import type { Signer } from '../base/signer.js';
import type { WorkloadIdentity } from '../base/workload-identity.js';
import type { EpochState } from '../appraisal/epoch-state.js';
import type { AuditBody } from '../audit/log.js';
import { attestd } from '../gen/proto.js';
import { identityProto } from './identity.js';
import type { LiveLease } from './live-lease.js';
import { signToken, type SignedToken } from './token.js';
import { lineageFields } from './lineage.js';

export const Kind = attestd.audit.v1.LeaseDecision.Kind;

/** The token of `lease` as it stands, signed with the session key. */
export function signLease(lease: Pick<LiveLease, 'id' | 'epoch' | 'rule' | 'scopes' | 'gpus' | 'who' | 'issuedAtMs' | 'expiresAtMs' | 'renewal' | 'intent' | 'lineage'>,
  epoch: EpochState, signer: Signer): SignedToken {
  return signToken({
    version: 1, leaseId: lease.id, epoch: lease.epoch, sessionPublicKey: signer.publicKey(), rule: lease.rule, gpus: lease.gpus,
    policySha256: epoch.policyDigest, scopes: lease.scopes, workload: identityProto(lease.who),
    issuedAtMs: lease.issuedAtMs, expiresAtMs: lease.expiresAtMs, renewal: lease.renewal,
    ...(lease.intent ? { intentSha256: lease.intent.digest } : {}),
    ...lineageFields(lease.lineage),
  }, signer);
}

type Issued = Pick<LiveLease, 'id' | 'epoch' | 'rule' | 'who' | 'token' | 'expiresAtMs' | 'intent' | 'lineage'> & Partial<Pick<LiveLease, 'authorization'>>;

function decision(kind: number, lease: Issued): AuditBody['leaseDecision'] {
  return { kind, leaseId: lease.id, epoch: lease.epoch, rule: lease.rule, workload: identityProto(lease.who),
    token: lease.token, expiresAtMs: lease.expiresAtMs };
}

/**
 * A GRANT or RENEW, with its token and the canonical encoding of its intent, marked when the
 * epoch passed only thanks to the update window.
 */
export function issueRecord(kind: number, lease: Issued, epoch: EpochState): AuditBody {
  return { leaseDecision: { ...decision(kind, lease), underUpdateWindow: epoch.underUpdateWindow ?? false,
    ...(lease.intent ? { intent: lease.intent.encoding } : {}), ...lineageFields(lease.lineage),
    ...(lease.authorization ? { authorizations: lease.authorization.jwts } : {}) } };
}

export function releaseRecord(lease: Issued): AuditBody {
  return { leaseDecision: decision(Kind.RELEASE, lease) };
}

/** A DENY (no lease id) or RENEW_DENIED, with the caller and the refusal's code and reason. */
export function denialRecord(kind: number, leaseId: string, epoch: number, who: WorkloadIdentity, err: AttestdError): AuditBody {
  return { leaseDecision: { kind, leaseId, epoch, workload: identityProto(who), reasonCode: err.code, reason: err.message } };
}

export function expiryRecord(epoch: number, leaseIds: string[]): AuditBody {
  return { leaseDecision: { kind: Kind.EXPIRE, epoch, count: leaseIds.length, leaseIds } };
}

export function revocationRecord(epoch: number, code: ErrorCode, reason: string, leaseIds: string[]): AuditBody {
  return { leaseDecision: { kind: Kind.REVOKE, epoch, reasonCode: code, reason, count: leaseIds.length, leaseIds } };
}
