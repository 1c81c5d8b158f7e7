import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { asAttestdError } from '../../daemon/base/errors.js';
import { parsePolicy } from '../../daemon/policy/parse.js';
import { foldReferences } from '../../daemon/policy/reference-values.js';
import type { AuthorizationRequirement } from '../../daemon/policy/authorization.js';
import { checkCoverage, verifyAuthorization, verifyAuthorizations } from '../../daemon/verify/authorization/verify.js';
import { encodeIntent, intentDigest, type ResolvedIntent } from '../../daemon/verify/intent/codec.js';
import { A64, B64, v2With } from './policy-v2-helpers.js';

const sched = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const owner = generateKeyPairSync('ed25519');
const NOW = Date.parse('2026-12-01T00:00:00Z');
const intent: ResolvedIntent = { artifacts: [{ name: 'w', sha256: Buffer.from(A64, 'hex'), measured: false }], imageDigest: '', cmdline: [], jobId: 'j', labels: [] };
const intentSha = intentDigest(encodeIntent(intent));
const subject = { rule: 'dev', gpus: ['GPU-0'], intent, intentSha256: intentSha };

const req: AuthorizationRequirement = {
  issuers: [
    { name: 'scheduler', jwk: sched.publicKey.export({ format: 'jwk' }) as Record<string, unknown> },
    { name: 'owner', keyFile: 'owner.pem', fileText: owner.publicKey.export({ format: 'pem', type: 'spki' }).toString() },
  ],
  require: 'all', audience: 'host-1', algorithms: ['ES256', 'EdDSA'], revokedIds: ['gone'],
};

interface Opts { iss?: string; key?: KeyObject; alg?: string; aud?: string; exp?: number; nbf?: number; jti?: string; authorizes?: unknown }
function jwt(o: Opts = {}): Promise<string> {
  const iss = o.iss ?? 'scheduler';
  const t = new SignJWT({ 'attestd.authorizes': o.authorizes ?? { intent_sha256: intentSha.toString('hex') } })
    .setProtectedHeader({ alg: o.alg ?? (iss === 'owner' ? 'EdDSA' : 'ES256') })
    .setIssuer(iss).setAudience(o.aud ?? 'host-1').setJti(o.jti ?? 'id-1')
    .setExpirationTime(o.exp ?? NOW / 1000 + 600);
  if (o.nbf !== undefined) t.setNotBefore(o.nbf);
  return t.sign(o.key ?? (iss === 'owner' ? owner.privateKey : sched.privateKey));
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return asAttestdError(err).code;
  }
}

describe('verifyAuthorization', () => {
  it('accepts a valid authorization and reports its issuer, id and expiry', async () => {
    const v = await verifyAuthorization(req, await jwt(), NOW);
    expect(v).toMatchObject({ issuer: 'scheduler', id: 'id-1', expiresAtMs: NOW + 600_000 });
    const w = await verifyAuthorization(req, await jwt({ iss: 'owner', jti: 'o' }), NOW);
    expect(w.issuer).toBe('owner');
  });

  it('refuses each failure with its stable code', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(await code(verifyAuthorization(req, await jwt({ key: other.privateKey }), NOW))).toBe('AUTHZ_INVALID');
    expect(await code(verifyAuthorization(req, await jwt({ iss: 'stranger' }), NOW))).toBe('AUTHZ_ISSUER_UNKNOWN');
    expect(await code(verifyAuthorization(req, await jwt({ aud: 'host-2' }), NOW))).toBe('AUTHZ_AUDIENCE');
    expect(await code(verifyAuthorization(req, await jwt({ exp: NOW / 1000 - 120 }), NOW))).toBe('AUTHZ_EXPIRED');
    expect(await code(verifyAuthorization(req, await jwt({ nbf: NOW / 1000 + 120 }), NOW))).toBe('AUTHZ_NOT_YET_VALID');
    expect(await code(verifyAuthorization(req, await jwt({ jti: 'gone' }), NOW))).toBe('AUTHZ_REVOKED');
    expect(await code(verifyAuthorization(req, await jwt({ authorizes: {} }), NOW))).toBe('AUTHZ_INVALID');
    expect(await code(verifyAuthorization(req, await jwt({ authorizes: { rule: 'dev', extra: 1 } }), NOW))).toBe('AUTHZ_INVALID');
    expect(await code(verifyAuthorization(req, 'x'.repeat(17 * 1024), NOW))).toBe('AUTHZ_INVALID');
    expect(await code(verifyAuthorizations(req, Array(5).fill(await jwt()) as string[], NOW))).toBe('AUTHZ_INVALID');
  });

  it('refuses an algorithm outside the allow-list', async () => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const r = { ...req, issuers: [{ name: 'scheduler', jwk: p384.publicKey.export({ format: 'jwk' }) as Record<string, unknown> }] };
    expect(await code(verifyAuthorization(r, await jwt({ key: p384.privateKey, alg: 'ES384' }), NOW))).toBe('AUTHZ_INVALID');
    expect(await code(verifyAuthorization({ ...r, algorithms: ['ES384'] }, await jwt({ key: p384.privateKey, alg: 'ES384' }), NOW))).toBe('ok');
  });

  it('refuses a tampered payload', async () => {
    const [h, p, s] = (await jwt()).split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    claims.aud = 'host-1';
    claims['attestd.authorizes'] = { rule: 'dev' };
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
    expect(await code(verifyAuthorization(req, forged, NOW))).toBe('AUTHZ_INVALID');
  });

  it('refuses garbage with AUTHZ_INVALID or AUTHZ_ISSUER_UNKNOWN, never anything else', async () => {
    const seg = fc.string({ maxLength: 40 }).map((s) => Buffer.from(s).toString('base64url'));
    await fc.assert(fc.asyncProperty(fc.oneof(fc.string({ maxLength: 200 }), fc.tuple(seg, seg, seg).map((t) => t.join('.'))), async (text) => {
      expect(['AUTHZ_INVALID', 'AUTHZ_ISSUER_UNKNOWN']).toContain(await code(verifyAuthorization(req, text, NOW)));
    }), { numRuns: 200 });
  });
});

describe('checkCoverage', () => {
  it('requires one authorization of every issuer under require: all, one under any', async () => {
    const s = await verifyAuthorization(req, await jwt(), NOW);
    const o = await verifyAuthorization(req, await jwt({ iss: 'owner', jti: 'o' }), NOW);
    expect(() => checkCoverage(req, [s, o], subject)).not.toThrow();
    expect(() => checkCoverage(req, [s], subject)).toThrow(expect.objectContaining({ code: 'AUTHZ_REQUIRED' }) as Error);
    expect(() => checkCoverage(req, [], subject)).toThrow(expect.objectContaining({ code: 'AUTHZ_REQUIRED' }) as Error);
    expect(() => checkCoverage({ ...req, require: 'any' }, [s], subject)).not.toThrow();
  });

  it('refuses what is not authorized: another intent, rule, artifact, image or GPU', async () => {
    const one = async (authorizes: unknown): Promise<string> => {
      const v = await verifyAuthorization(req, await jwt({ authorizes }), NOW);
      try {
        checkCoverage({ ...req, require: 'any' }, [v], subject);
        return 'ok';
      } catch (err) {
        return asAttestdError(err).code;
      }
    };
    expect(await one({ intent_sha256: B64 })).toBe('AUTHZ_MISMATCH');
    expect(await one({ rule: 'prod' })).toBe('AUTHZ_MISMATCH');
    expect(await one({ rule: 'dev', artifacts: [B64] })).toBe('AUTHZ_MISMATCH');
    expect(await one({ image_digest: `sha256:${A64}` })).toBe('AUTHZ_MISMATCH');
    expect(await one({ gpus: ['GPU-1'] })).toBe('AUTHZ_MISMATCH');
    expect(await one({ rule: 'dev', artifacts: [A64], gpus: ['GPU-0', 'GPU-1'] })).toBe('ok');
  });
});

describe('policy authorization', () => {
  it('parses issuers, defaults, and folds in the key file it names', () => {
    const pem = owner.publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const loaded = parsePolicy(v2With({ 15: '      gpus: all\n    authorization:\n      audience: host-1\n      issuers:\n        - { name: owner, key_file: owner.pem }' }), 'p.yaml');
    const folded = foldReferences(loaded, [{ file: 'owner.pem', bytes: Buffer.from(pem) }]);
    const a = folded.policy.rules[0]!.authorization!;
    expect(a).toMatchObject({ require: 'all', audience: 'host-1', algorithms: ['ES256', 'ES384', 'EdDSA', 'Ed25519'], revokedIds: [] });
    expect(a.issuers[0]!.fileText).toBe(pem);
    expect(() => foldReferences(loaded, [])).toThrow(/owner.pem was not read/);
  });

  it('refuses an issuer with two keys, or none', () => {
    const bad = (issuer: string): void => {
      expect(() => parsePolicy(v2With({ 15: `      gpus: all\n    authorization:\n      audience: h\n      issuers:\n        - ${issuer}` }), 'p.yaml')).toThrow();
    };
    bad('{ name: a }');
    expect(() => parsePolicy(v2With({ 15: '      gpus: all\n    authorization:\n      audience: h\n      issuers:\n        - { name: a, jwk: { kty: EC, crv: P-256, x: a, y: b } }' }), 'p.yaml')).not.toThrow();
    bad('{ name: a, key_file: k.pem, jwks_file: k.json }');
  });
});
