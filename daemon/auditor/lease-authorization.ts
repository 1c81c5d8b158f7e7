/**
 * The offline checks of a grant's or renewal's signed authorizations. Pure. Under the policy
 * the token names, a rule that requires authorization must have its authorizations recorded;
 * each must verify against the rule's issuers as the recorded policy names them, at the time
 * the lease was issued (not now), cover the token's rule, GPUs and recorded intent, and the
 * lease must not outlive the earliest of them. An authorization id used by two grants fails.
 * Asynchronous (signatures are checked with jose), so the verifier awaits it after the record.
 */
import type { attestd } from '../gen/proto.js';
import { asAttestdError } from '../base/errors.js';
import { decodeIntent } from '../verify/intent/codec.js';
import { checkCoverage, earliestExpiry, verifyAuthorizations } from '../verify/authorization/verify.js';
import type { LoadedPolicy } from '../policy/types.js';

/** Why the record's authorizations fail, or undefined. `used`: the lease id that used each authorization id (issuer and jti). */
export async function recordedAuthorizationProblem(d: attestd.audit.v1.LeaseDecision, claims: attestd.lease.v1.LeaseToken,
  policy: LoadedPolicy | undefined, used: Map<string, string>, isGrant: boolean): Promise<string | undefined> {
  const jwts = d.authorizations ?? [];
  if (!policy || !policy.digest.equals(Buffer.from(claims.policySha256))) {
    return jwts.length > 0 ? `lease ${d.leaseId}: authorizations recorded under a policy the log does not hold` : undefined;
  }
  const req = policy.policy.rules.find((r) => r.name === claims.rule)?.authorization;
  if (!req) return jwts.length > 0 ? `lease ${d.leaseId}: authorizations recorded for rule ${claims.rule}, which requires none` : undefined;
  try {
    const verified = await verifyAuthorizations(req, jwts, Number(claims.issuedAtMs));
    const encoding = d.intent ?? new Uint8Array();
    const intent = encoding.length > 0 ? decodeIntent(encoding) : undefined;
    const digest = Buffer.from(claims.intentSha256 ?? new Uint8Array());
    checkCoverage(req, verified, { rule: claims.rule, gpus: claims.gpus ?? [], ...(intent ? { intent } : {}), ...(digest.length > 0 ? { intentSha256: digest } : {}) });
    if (Number(claims.expiresAtMs) > earliestExpiry(verified)) return `lease ${d.leaseId}: expires after its authorization`;
    for (const v of verified) {
      const key = JSON.stringify([v.issuer, v.id]);
      const holder = used.get(key);
      if (isGrant && holder !== undefined && holder !== d.leaseId) return `lease ${d.leaseId}: authorization ${v.id} by ${v.issuer} already granted lease ${holder}`;
      if (isGrant) used.set(key, d.leaseId);
    }
  } catch (err) {
    const e = asAttestdError(err);
    return `lease ${d.leaseId}: authorization refused: ${e.code}: ${e.message}`;
  }
  return undefined;
}
