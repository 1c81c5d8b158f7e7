/**
 * Verifying signed authorizations (compact JWS JWTs) against the issuers a rule trusts, at a
 * given time: the daemon at grant (now), the auditor offline (at the record's time). Pure:
 * keys come as text folded into the policy at load. Every refusal carries a stable AUTHZ_* code.
 *
 * Each authorization must name a trusted issuer (`iss`), verify under that issuer's key with
 * an algorithm the rule allows, be addressed to this host (`aud`), be within its window
 * (`nbf`, `exp`, required), carry an id (`jti`) not revoked, and say what it authorizes.
 */
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, errors, jwtVerify, type JSONWebKeySet } from 'jose';
import { AttestdError } from '../../base/errors.js';
import { AUTHORIZES_CLAIM, authorizesProblem, parseAuthorizes, type Authorizes, type AuthorizationSubject } from './authorizes.js';
import type { AuthorizationIssuer, AuthorizationRequirement } from './trust.js';

export const MAX_AUTHORIZATIONS = 4;
export const MAX_AUTHORIZATION_BYTES = 16 * 1024;
/** Clock skew tolerated between an issuer and this host, in seconds. */
export const AUTHZ_CLOCK_TOLERANCE_S = 30;

export interface VerifiedAuthorization {
  jwt: string;
  issuer: string;
  id: string;
  expiresAtMs: number;
  authorizes: Authorizes;
}

/** What jwtVerify takes as the key: one key, or a function choosing it from the header (a key set). */
type KeyGetter = Parameters<typeof jwtVerify>[1];

/** The key (or key set) of an issuer; AUTHZ_INVALID when its material does not import. */
function issuerKey(issuer: AuthorizationIssuer): KeyGetter {
  try {
    if (issuer.jwk) {
      const k = createPublicKey({ key: issuer.jwk as JsonWebKey, format: 'jwk' });
      return k;
    }
    if (issuer.keyFile !== undefined) {
      const k = createPublicKey({ key: issuer.fileText ?? '', format: 'pem' });
      return k;
    }
    const set = JSON.parse(issuer.fileText ?? '') as JSONWebKeySet;
    return createLocalJWKSet(set);
  } catch (err) {
    throw new AttestdError('AUTHZ_INVALID', `the key of issuer ${issuer.name} does not import: ${(err as Error).message}`);
  }
}

/** Checks every issuer's key material imports (at policy load, so a bad key fails the load). */
export function checkIssuerKeys(req: AuthorizationRequirement): void {
  for (const i of req.issuers) issuerKey(i);
}

function unverifiedIssuer(jwt: string): unknown {
  try {
    return decodeJwt(jwt).iss;
  } catch {
    throw new AttestdError('AUTHZ_INVALID', 'not a compact JWT');
  }
}

/** A jose refusal as a stable code. */
function refusal(err: unknown, issuer: string): AttestdError {
  if (err instanceof AttestdError) return err;
  const what = `authorization by ${issuer}`;
  if (err instanceof errors.JWTExpired) return new AttestdError('AUTHZ_EXPIRED', `${what} expired`);
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' && err.reason === 'check_failed') return new AttestdError('AUTHZ_NOT_YET_VALID', `${what} is not yet valid`);
    if (err.claim === 'aud' && err.reason === 'check_failed') return new AttestdError('AUTHZ_AUDIENCE', `${what} is addressed to another host`);
    return new AttestdError('AUTHZ_INVALID', `${what}: claim ${err.claim} ${err.reason}`);
  }
  return new AttestdError('AUTHZ_INVALID', `${what} does not verify: ${err instanceof Error ? err.message : String(err)}`);
}

/** One authorization verified at `atMs`, or a refusal naming what failed. */
export async function verifyAuthorization(req: AuthorizationRequirement, jwt: string, atMs: number): Promise<VerifiedAuthorization> {
  if (typeof jwt !== 'string' || jwt.length === 0 || jwt.length > MAX_AUTHORIZATION_BYTES) {
    throw new AttestdError('AUTHZ_INVALID', `an authorization of 1 to ${MAX_AUTHORIZATION_BYTES} bytes`);
  }
  const iss = unverifiedIssuer(jwt);
  const issuer = req.issuers.find((i) => i.name === iss);
  if (!issuer) throw new AttestdError('AUTHZ_ISSUER_UNKNOWN', `issuer ${JSON.stringify(String(iss).slice(0, 128))} is not trusted by the rule`);
  try {
    const { payload } = await jwtVerify(jwt, issuerKey(issuer), {
      algorithms: req.algorithms, audience: req.audience, issuer: issuer.name, currentDate: new Date(atMs),
      clockTolerance: AUTHZ_CLOCK_TOLERANCE_S, requiredClaims: ['exp', 'jti', 'aud', 'iss'],
    });
    const id = payload.jti;
    if (typeof id !== 'string' || id.length === 0 || id.length > 256) throw new AttestdError('AUTHZ_INVALID', 'jti is not an id of 1 to 256 characters');
    if (req.revokedIds.includes(id)) throw new AttestdError('AUTHZ_REVOKED', `authorization ${id} is revoked`);
    const authorizes = parseAuthorizes((payload as Record<string, unknown>)[AUTHORIZES_CLAIM]);
    return { jwt, issuer: issuer.name, id, expiresAtMs: payload.exp! * 1000, authorizes };
  } catch (err) {
    throw refusal(err, issuer.name);
  }
}

/** Every presented authorization verified at `atMs` (any failing one refuses the request). */
export async function verifyAuthorizations(req: AuthorizationRequirement, jwts: readonly string[], atMs: number): Promise<VerifiedAuthorization[]> {
  if (jwts.length > MAX_AUTHORIZATIONS) throw new AttestdError('AUTHZ_INVALID', `more than ${MAX_AUTHORIZATIONS} authorizations`);
  const out: VerifiedAuthorization[] = [];
  for (const jwt of jwts) out.push(await verifyAuthorization(req, jwt, atMs));
  return out;
}

/**
 * The verified authorizations cover the subject: each one authorizes it (AUTHZ_MISMATCH
 * otherwise), and they come from every issuer (require all) or at least one (any),
 * AUTHZ_REQUIRED otherwise. Synchronous, so the daemon runs it in its grant's checks.
 */
export function checkCoverage(req: AuthorizationRequirement, verified: readonly VerifiedAuthorization[], subject: AuthorizationSubject): void {
  for (const v of verified) {
    const problem = authorizesProblem(v.authorizes, subject);
    if (problem !== undefined) throw new AttestdError('AUTHZ_MISMATCH', `authorization ${v.id} by ${v.issuer}: ${problem}`);
  }
  const from = new Set(verified.map((v) => v.issuer));
  if (from.size === 0) throw new AttestdError('AUTHZ_REQUIRED', 'the rule requires signed authorization');
  const missing = req.issuers.find((i) => !from.has(i.name));
  if (req.require === 'all' && missing) throw new AttestdError('AUTHZ_REQUIRED', `the rule requires an authorization by ${missing.name}`);
}

/** The earliest expiry of a set of authorizations: no lease they cover outlives it. */
export function earliestExpiry(verified: readonly Pick<VerifiedAuthorization, 'expiresAtMs'>[]): number {
  return Math.min(...verified.map((v) => v.expiresAtMs));
}
