/**
 * Whom a rule trusts to authorize a grant, as the policy states it (policy/authorization.ts
 * builds it): the verifier's input. Key files are given by their text, read at policy load.
 */

export interface AuthorizationIssuer {
  /** The issuer's name; an authorization names it in its `iss` claim. */
  name: string;
  /** Exactly one of the three: a public JWK written in the policy, */
  jwk?: Record<string, unknown>;
  /** a PEM (SPKI) public key file, or a JWKS file, relative to the policy file; */
  keyFile?: string;
  jwksFile?: string;
  /** and the text of that file, folded in at load (foldIssuerFiles). */
  fileText?: string;
}

export interface AuthorizationRequirement {
  issuers: AuthorizationIssuer[];
  /** all: one valid authorization from every issuer; any: from at least one. */
  require: 'all' | 'any';
  /** The `aud` every authorization must name: this host's id as the operator chose it. */
  audience: string;
  algorithms: string[];
  revokedIds: string[];
}
