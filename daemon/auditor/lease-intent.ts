/**
 * The offline checks of a grant's or renewal's execution intent. Pure. The record holds the
 * intent's canonical encoding and the token its digest: the encoding must decode (bounded,
 * canonical), hash to the token's digest, satisfy the constraints of the token's rule under
 * the policy the token names (the same check the daemon ran), and a renewal must carry the
 * intent its grant did.
 */
import type { attestd } from '../gen/proto.js';
import { asAttestdError } from '../base/errors.js';
import { decodeIntent, intentDigest, type ResolvedIntent } from '../verify/intent/codec.js';
import { checkIntent } from '../policy/intent.js';
import type { LoadedPolicy } from '../policy/types.js';

/** Why the record's intent fails, or undefined. `granted`: intent digests (hex) of the leases granted so far, by lease id. */
export function recordedIntentProblem(d: attestd.audit.v1.LeaseDecision, claims: attestd.lease.v1.LeaseToken,
  policy: LoadedPolicy | undefined, granted: Map<string, string>, isGrant: boolean): string | undefined {
  const encoding = d.intent ?? new Uint8Array();
  const named = Buffer.from(claims.intentSha256 ?? new Uint8Array());
  let intent: ResolvedIntent | undefined;
  if (encoding.length > 0 || named.length > 0) {
    try {
      intent = decodeIntent(encoding);
    } catch (err) {
      return `lease ${d.leaseId}: recorded intent does not decode: ${asAttestdError(err).message}`;
    }
    if (!intentDigest(encoding).equals(named)) return `lease ${d.leaseId}: recorded intent does not hash to the token's intent digest`;
  }
  const digest = named.toString('hex');
  if (isGrant) granted.set(d.leaseId, digest);
  else if (granted.has(d.leaseId) && granted.get(d.leaseId) !== digest) return `lease ${d.leaseId}: renewed with another intent than it was granted with`;
  if (!policy || !policy.digest.equals(Buffer.from(claims.policySha256))) return undefined;
  const rule = policy.policy.rules.find((r) => r.name === claims.rule);
  try {
    checkIntent(rule?.intent, intent);
  } catch (err) {
    const e = asAttestdError(err);
    return `lease ${d.leaseId}: intent refused by rule ${claims.rule}: ${e.code}: ${e.message}`;
  }
  return undefined;
}
