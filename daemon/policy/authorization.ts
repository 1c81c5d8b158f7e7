/**
 * A rule's authorization requirement (docs/policy.md, "Authorization"): the issuers whose
 * signed authorizations a grant under the rule needs, the audience they must name (this
 * host), the signature algorithms accepted and the authorization ids revoked. The schema of
 * rules[].authorization and its typed form. Pure: key files are read by config/policy-file.ts
 * and folded in here (as reference-value files are), so the auditor folds in the recorded copies.
 */
import type { Schema } from './schema-parts.js';
import type { AuthorizationIssuer, AuthorizationRequirement } from '../verify/authorization/trust.js';

export type { AuthorizationIssuer, AuthorizationRequirement };

/** Signature algorithms an issuer may use; the policy narrows them, never widens them. */
export const AUTHZ_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512'] as const;
export const DEFAULT_AUTHZ_ALGORITHMS = ['ES256', 'ES384', 'EdDSA', 'Ed25519'];
export const MAX_AUTHZ_ISSUERS = 8;
export const MAX_REVOKED_IDS = 4096;

const fileName = { type: 'string', pattern: '^[\\x21-\\x7e]{1,1024}$', description: 'a file name, relative to the policy file' };

export const RULE_AUTHORIZATION_SCHEMA: Schema = {
  type: 'object',
  description: 'a mapping with issuers, audience, and optionally require, algorithms and revoked_ids',
  additionalProperties: false,
  required: ['issuers', 'audience'],
  properties: {
    issuers: {
      type: 'array', description: `a list of 1 to ${MAX_AUTHZ_ISSUERS} issuers`, minItems: 1, maxItems: MAX_AUTHZ_ISSUERS,
      items: {
        type: 'object', description: 'a mapping with name and exactly one of jwk, key_file and jwks_file',
        additionalProperties: false, required: ['name'], minProperties: 2, maxProperties: 2,
        properties: {
          name: { type: 'string', pattern: '^[\\x21-\\x7e]{1,128}$', description: 'an issuer name of 1 to 128 printable ASCII characters' },
          jwk: {
            type: 'object', description: 'a public JSON Web Key (kty and its public parameters)', required: ['kty'], maxProperties: 16,
            properties: { kty: { enum: ['EC', 'OKP', 'RSA'], description: 'EC, OKP or RSA' } },
            additionalProperties: { type: 'string', maxLength: 4096, description: 'a string' },
          },
          key_file: fileName,
          jwks_file: fileName,
        },
      },
    },
    require: { enum: ['all', 'any'], description: 'all or any' },
    audience: { type: 'string', pattern: '^[\\x21-\\x7e]{1,256}$', description: 'this host\'s id, 1 to 256 printable ASCII characters' },
    algorithms: {
      type: 'array', description: 'a list of JWS algorithms', minItems: 1, maxItems: AUTHZ_ALGORITHMS.length, uniqueItems: true,
      items: { enum: [...AUTHZ_ALGORITHMS], description: `one of ${AUTHZ_ALGORITHMS.join(', ')}` },
    },
    revoked_ids: {
      type: 'array', description: `a list of at most ${MAX_REVOKED_IDS} authorization ids (jti)`, maxItems: MAX_REVOKED_IDS,
      items: { type: 'string', minLength: 1, maxLength: 256, description: 'an authorization id' },
    },
  },
};

type Obj = Record<string, unknown>;
const own = (o: Obj, k: string): unknown => (Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined);

/** The typed requirement of a rule's validated `authorization` mapping. */
export function authorizationRequirement(raw: Obj): AuthorizationRequirement {
  const issuers = (own(raw, 'issuers') as Obj[]).map((i): AuthorizationIssuer => {
    const out: AuthorizationIssuer = { name: String(own(i, 'name')) };
    const jwk = own(i, 'jwk') as Obj | undefined;
    if (jwk !== undefined) out.jwk = { ...jwk };
    const keyFile = own(i, 'key_file') as string | undefined;
    if (keyFile !== undefined) out.keyFile = keyFile;
    const jwksFile = own(i, 'jwks_file') as string | undefined;
    if (jwksFile !== undefined) out.jwksFile = jwksFile;
    return out;
  });
  return {
    issuers,
    require: own(raw, 'require') === 'any' ? 'any' : 'all',
    audience: String(own(raw, 'audience')),
    algorithms: [...((own(raw, 'algorithms') as string[] | undefined) ?? DEFAULT_AUTHZ_ALGORITHMS)],
    revokedIds: [...((own(raw, 'revoked_ids') as string[] | undefined) ?? [])],
  };
}

/** The key files a requirement names (PEM or JWKS). */
export function authorizationFiles(req: AuthorizationRequirement | undefined): string[] {
  return (req?.issuers ?? []).flatMap((i) => i.keyFile ?? i.jwksFile ?? []);
}

/** The requirement with each issuer's key file text folded in; `text` gives the text of a file, or undefined. */
export function foldIssuerFiles(req: AuthorizationRequirement, text: (file: string) => string | undefined): AuthorizationRequirement {
  const issuers = req.issuers.map((i) => {
    const file = i.keyFile ?? i.jwksFile;
    if (file === undefined) return i;
    const fileText = text(file);
    if (fileText === undefined) throw new TypeError(`issuer key file ${file} was not read`);
    return { ...i, fileText };
  });
  return { ...req, issuers };
}
