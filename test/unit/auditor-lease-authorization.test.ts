import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { attestd } from '../../daemon/gen/proto.js';
import { recordedAuthorizationProblem } from '../../daemon/auditor/lease-authorization.js';
import type { LoadedPolicy } from '../../daemon/policy/types.js';

const issuer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ISSUED = Date.parse('2026-12-01T00:00:00Z');
const policy: LoadedPolicy = { file: 'p.yaml', text: '', digest: Buffer.alloc(32, 7),
  policy: { version: 2, intervalMs: 2000, maxAgeMs: 6000, allowSha1: false, pcrs: [], rules: [{ name: 'job', match: {}, ttlMs: 60_000, scopes: [],
    authorization: { issuers: [{ name: 'sched', jwk: issuer.publicKey.export({ format: 'jwk' }) as Record<string, unknown> }],
      require: 'all', audience: 'host-1', algorithms: ['ES256'], revokedIds: [] } }] } };

const jwt = (jti: string, rule = 'job'): Promise<string> => new SignJWT({ 'attestd.authorizes': { rule } }).setProtectedHeader({ alg: 'ES256' })
  .setIssuer('sched').setAudience('host-1').setJti(jti).setExpirationTime(ISSUED / 1000 + 60).sign(issuer.privateKey);

function rec(leaseId: string, authorizations: string[], expiresAtMs = ISSUED + 60_000) {
  const d = attestd.audit.v1.LeaseDecision.create({ kind: 1, leaseId, authorizations });
  const claims = attestd.lease.v1.LeaseToken.create({ rule: 'job', policySha256: policy.digest, issuedAtMs: ISSUED, expiresAtMs });
  return [d, claims] as const;
}

describe('recordedAuthorizationProblem', () => {
  it('passes a valid record, verified at its issue time (not now), and fails each kind of tampering', async () => {
    const used = new Map<string, string>();
    const a = await jwt('a');
    expect(await recordedAuthorizationProblem(...rec('l1', [a]), policy, used, true)).toBeUndefined();
    expect(await recordedAuthorizationProblem(...rec('l1', [a]), policy, used, false)).toBeUndefined();
    expect(await recordedAuthorizationProblem(...rec('l2', [a]), policy, used, true)).toMatch(/already granted lease l1/);
    expect(await recordedAuthorizationProblem(...rec('l3', []), policy, used, true)).toMatch(/AUTHZ_REQUIRED/);
    expect(await recordedAuthorizationProblem(...rec('l4', [await jwt('b', 'other')]), policy, used, true)).toMatch(/AUTHZ_MISMATCH/);
    expect(await recordedAuthorizationProblem(...rec('l5', [await jwt('c')], ISSUED + 61_000), policy, used, true)).toMatch(/expires after/);
    const [h, p, s] = (await jwt('d')).split('.');
    const altered = `${h}.${p!.slice(0, -2)}${p!.slice(-2) === 'fQ' ? 'fR' : 'fQ'}.${s}`;
    expect(await recordedAuthorizationProblem(...rec('l6', [altered]), policy, used, true)).toMatch(/AUTHZ_INVALID/);
  });
});
