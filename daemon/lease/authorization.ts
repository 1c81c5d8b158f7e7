/**
 * Signed authorizations in the lease manager (docs/policy.md, "Authorization"). Verifying
 * signatures is asynchronous, so it runs before the grant's synchronous checks (preverify);
 * those then check, in the same step as the lease enters the table, that the policy is still
 * the one verified against, that the authorizations cover this grant, and that none was used
 * before, and take their ids. A lease never outlives its earliest authorization; renewals keep
 * the authorizations and are refused once the policy revokes one or drops its issuer.
 */
import { AttestdError, asAttestdError } from '../base/errors.js';
import type { Rule } from '../policy/types.js';
import type { AuthorizationSubject } from '../verify/authorization/authorizes.js';
import { checkCoverage, earliestExpiry, verifyAuthorizations, type VerifiedAuthorization } from '../verify/authorization/verify.js';
import { idKey, type AuthorizationIds } from './authz-replay.js';

/** The authorizations a lease was granted with. */
export interface LeaseAuthorization {
  jwts: string[];
  /** Issuer and id of each. */
  ids: { issuer: string; id: string }[];
  expiresAtMs: number;
  /** When the grant checked them: a reload re-verifies them as of then. */
  grantedAtMs: number;
}

export interface Preverified {
  /** The policy in force when they were verified (compared by identity). */
  policy: unknown;
  verified: VerifiedAuthorization[];
}

/** Verifies the presented authorizations against the rule's issuers; undefined, without yielding, when the rule requires none. */
export function preverify(rule: Rule, policy: unknown, jwts: readonly string[], nowMs: number): Promise<Preverified> | undefined {
  const req = rule.authorization;
  if (!req) return undefined;
  return verifyAuthorizations(req, jwts, nowMs).then((verified) => ({ policy, verified }));
}

/**
 * Synchronous: the authorization of a grant under `rule`, its ids taken (in memory at once;
 * `durable` resolves once they are on disk), or a refusal. Undefined when the rule needs none.
 */
export function grantAuthorization(rule: Rule, pre: Preverified | undefined, policyNow: unknown, subject: AuthorizationSubject,
  ids: AuthorizationIds, nowMs: number): { auth: LeaseAuthorization; durable: Promise<void> } | undefined {
  if (!rule.authorization) return undefined;
  if (!pre || pre.policy !== policyNow) throw new AttestdError('POLICY_PENDING', 'the policy changed while the authorizations were verified');
  checkCoverage(rule.authorization, pre.verified, subject);
  const expiresAtMs = earliestExpiry(pre.verified);
  if (expiresAtMs <= nowMs) throw new AttestdError('AUTHZ_EXPIRED', 'an authorization expired while the request was checked');
  const keys = pre.verified.map((v) => idKey(v.issuer, v.id));
  if (new Set(keys).size !== keys.length) throw new AttestdError('AUTHZ_REPLAYED', 'an authorization id is given twice');
  const used = pre.verified.find((v, i) => ids.used(keys[i]!));
  if (used) throw new AttestdError('AUTHZ_REPLAYED', `authorization ${used.id} by ${used.issuer} was already used for a grant`);
  const durable = Promise.all(pre.verified.map((v, i) => ids.take(keys[i]!, v.expiresAtMs))).then(() => undefined);
  // Awaited by the grant; until then a rejection must not count as unhandled.
  durable.catch(() => undefined);
  return { auth: { jwts: pre.verified.map((v) => v.jwt), ids: pre.verified.map((v) => ({ issuer: v.issuer, id: v.id })), expiresAtMs,
    grantedAtMs: nowMs }, durable };
}

/** Synchronous: a renewal under `rule` as it is now keeps the lease's authorizations, unless the policy revoked one or dropped its issuer. */
export function checkStillAuthorized(rule: Rule, auth: LeaseAuthorization | undefined, nowMs: number): void {
  const req = rule.authorization;
  if (!req) return;
  if (!auth) throw new AttestdError('AUTHZ_REQUIRED', 'the rule now requires signed authorization');
  for (const { issuer, id } of auth.ids) {
    if (!req.issuers.some((i) => i.name === issuer)) throw new AttestdError('AUTHZ_ISSUER_UNKNOWN', `issuer ${issuer} is no longer trusted by the rule`);
    if (req.revokedIds.includes(id)) throw new AttestdError('AUTHZ_REVOKED', `authorization ${id} is revoked`);
  }
  if (auth.expiresAtMs <= nowMs) throw new AttestdError('AUTHZ_EXPIRED', 'the lease\'s authorization expired');
}

/**
 * After a policy reload: why a lease's authorizations no longer hold under `rule` as it is now
 * (an issuer no longer named or its key changed, so the signature no longer verifies; an id now
 * revoked), checked at the lease's grant time; undefined when they hold or the rule requires none.
 */
export async function authorizationEnded(rule: Rule | undefined, auth: LeaseAuthorization): Promise<AttestdError | undefined> {
  const req = rule?.authorization;
  if (!req) return undefined;
  try {
    await verifyAuthorizations(req, auth.jwts, auth.grantedAtMs);
    return undefined;
  } catch (err) {
    return asAttestdError(err);
  }
}
