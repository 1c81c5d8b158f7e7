/**
 * Attestation results as IETF RATS EAR (draft-ietf-rats-ear): a JWT whose claims say which
 * verifier appraised what, with a status and an AR4SI trustworthiness vector per appraised
 * part ("submods"), over the relying party's nonce. attestd adds the lease the result is for
 * under its own claim name. Pure: claim building, and the one place that names the constants.
 */
export const EAR_PROFILE = 'tag:github.com,2023:veraison/ear';
/** The JWT's type and algorithm: the session key is Ed25519. */
export const EAR_HEADER = { alg: 'EdDSA', typ: 'JWT' } as const;
/** attestd's claim with the lease a result speaks for. */
export const LEASE_CLAIM = 'attestd.lease';

export type EarStatus = 'none' | 'affirming' | 'warning' | 'contraindicated';

/** AR4SI trustworthiness claims (draft-ietf-rats-ar4si). */
export type Ar4siClaim = 'instance-identity' | 'configuration' | 'executables' | 'file-system' | 'hardware'
  | 'runtime-opaque' | 'storage-opaque' | 'sourced-data';

/** AR4SI values: the "affirming", "warning" and "contraindicated" tiers' first codes. */
const TIER: Readonly<Record<EarStatus, number>> = { none: 0, affirming: 2, warning: 32, contraindicated: 96 };

export interface Submod {
  status: EarStatus;
  /** The claims this part speaks to; each gets the status's tier value. */
  claims: Ar4siClaim[];
}

export interface LeaseClaims {
  lease_id: string;
  rule: string;
  scopes: string[];
  gpus: string[];
  expires_at_ms: number;
  epoch: number;
  policy_sha256: string;
  workload: { pid: number; uid: number; gid: number; exe_sha256: string; exe_path: string; cgroup: string };
}

export interface EarInput {
  iatSeconds: number;
  nonce: Uint8Array;
  /** The daemon's version, for ear.verifier-id. */
  build: string;
  submods: Record<string, Submod>;
  lease: LeaseClaims;
}

export function earClaims(i: EarInput): Record<string, unknown> {
  const submods: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(i.submods)) {
    submods[name] = {
      'ear.status': s.status,
      'ear.trustworthiness-vector': Object.fromEntries(s.claims.map((c) => [c, TIER[s.status]])),
    };
  }
  return {
    eat_profile: EAR_PROFILE,
    iat: i.iatSeconds,
    eat_nonce: Buffer.from(i.nonce).toString('base64url'),
    'ear.verifier-id': { developer: 'attestd', build: i.build },
    submods,
    [LEASE_CLAIM]: i.lease,
  };
}

/** The JWS signing input for `claims`: BASE64URL(header) "." BASE64URL(payload). */
export function signingInput(claims: Record<string, unknown>): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${part(EAR_HEADER)}.${part(claims)}`;
}
