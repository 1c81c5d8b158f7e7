/**
 * Off-host verification of an attestation result: the whole chain from the EAR to a CA the
 * relying party trusts, on a machine with no daemon and no TPM. Pure (jose checks the JWT).
 *
 * The links, in order; the first that fails throws ResultFailure naming it:
 *  bundle          the bundle decodes (bundle.ts);
 *  ear-signature   the EAR is a JWT signed (EdDSA) by the bundle's session key;
 *  ear-claims      it is an EAR (profile, verifier, submods, the lease claim) issued no later
 *                  than `at` (plus a minute of clock skew);
 *  nonce           its eat_nonce is the bundle's nonce, and the relying party's when given;
 *  quote           the AK's quote verifies: signature, qualifying data binding the session key
 *                  and the nonce, the PCR values hashing to its digest;
 *  ak-certificate  the AK certificate chains to a CA the caller names and certifies that AK;
 *  ek-certificate  with vendor CAs given: the EK certificate the AK certificate names is in
 *                  the bundle and chains to one of them.
 */
import { createHash, createPublicKey } from 'node:crypto';
import { decodeJwt, jwtVerify } from 'jose';
import { verifyAkCertificate } from '../ak-certificate.js';
import { verifyEkCertificate, type CaInput } from '../ek-cert.js';
import { verifyQuote } from '../quote.js';
import { parseTpmtPublic } from '../tpm-public.js';
import type { Certificate } from '../x509/certificate.js';
import { decodeBundle, resultBinding, type ResultBundle } from './bundle.js';
import { EAR_PROFILE, LEASE_CLAIM, type LeaseClaims } from './claims.js';

export type ResultLink = 'bundle' | 'ear-signature' | 'ear-claims' | 'nonce' | 'quote' | 'ak-certificate' | 'ek-certificate';

export class ResultFailure extends Error {
  constructor(readonly link: ResultLink, message: string) {
    super(message);
    this.name = 'ResultFailure';
  }
}

export interface ResultTrust {
  /** Enrolling CA certificates: the AK certificate must chain to one of them. */
  cas: readonly Certificate[];
  /** TPM vendor CAs: when given, the EK certificate must chain to one of them. */
  ekCas?: readonly CaInput[] | undefined;
  /** The nonce the relying party sent, when it sent one. */
  nonce?: Uint8Array | undefined;
  at: Date;
}

export interface VerifiedResult {
  claims: Record<string, unknown>;
  lease: LeaseClaims;
  akName: string;
  ekCertificateSha256: string;
  /** Per submod, its ear.status. */
  statuses: Record<string, string>;
}

async function link<T>(name: ResultLink, step: () => T | Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (err instanceof ResultFailure) throw err;
    throw new ResultFailure(name, err instanceof Error ? err.message : String(err));
  }
}

function claimsOf(payload: Record<string, unknown>, at: Date): { lease: LeaseClaims; statuses: Record<string, string> } {
  const fail = (m: string): never => {
    throw new ResultFailure('ear-claims', m);
  };
  if (payload.eat_profile !== EAR_PROFILE) fail(`eat_profile is not ${EAR_PROFILE}`);
  const iat = payload.iat;
  if (typeof iat !== 'number' || !Number.isFinite(iat)) fail('iat is missing');
  if ((iat as number) * 1000 > at.getTime() + 60_000) fail('iat is in the future');
  const vid = payload['ear.verifier-id'] as { developer?: unknown } | undefined;
  if (vid?.developer !== 'attestd') fail('ear.verifier-id does not name attestd');
  const submods = payload.submods;
  if (typeof submods !== 'object' || submods === null || Object.keys(submods).length === 0) fail('submods are missing');
  const statuses: Record<string, string> = {};
  for (const [name, s] of Object.entries(submods as Record<string, { 'ear.status'?: unknown }>)) {
    const status = s?.['ear.status'];
    if (status !== 'affirming' && status !== 'warning' && status !== 'contraindicated' && status !== 'none') fail(`submod ${name}: bad ear.status`);
    statuses[name] = status as string;
  }
  const lease = payload[LEASE_CLAIM] as LeaseClaims | undefined;
  if (typeof lease?.lease_id !== 'string' || typeof lease.expires_at_ms !== 'number') fail(`the ${LEASE_CLAIM} claim is missing`);
  return { lease: lease as LeaseClaims, statuses };
}

export async function verifyResult(text: string | Uint8Array, trust: ResultTrust): Promise<VerifiedResult> {
  const b: ResultBundle = await link('bundle', () => decodeBundle(text));
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b.sessionPublicKey.toString('base64url') }, format: 'jwk' });
  const { payload } = await link('ear-signature', () => jwtVerify(b.ear, key, { algorithms: ['EdDSA'], typ: 'JWT', clockTolerance: 60 }));
  const { lease, statuses } = await link('ear-claims', () => claimsOf(payload as Record<string, unknown>, trust.at));
  await link('nonce', () => {
    if (payload.eat_nonce !== b.nonce.toString('base64url')) throw new ResultFailure('nonce', 'eat_nonce is not the bundle\'s nonce');
    if (trust.nonce && !b.nonce.equals(Buffer.from(trust.nonce))) throw new ResultFailure('nonce', 'the result answers another nonce than the one sent');
  });
  const ak = await link('quote', () => {
    const k = parseTpmtPublic(b.quote.akPublic);
    verifyQuote({ attest: b.quote.attest, signature: b.quote.signature, pcrs: b.quote.banks, ak: k, expectedNonce: resultBinding(b.sessionPublicKey, b.nonce) });
    return k;
  });
  const cert = await link('ak-certificate', () => {
    if (!b.akCertificate) throw new ResultFailure('ak-certificate', 'the bundle carries no AK certificate (the host is not enrolled)');
    return verifyAkCertificate(b.akCertificate, trust.cas, [], ak, trust.at);
  });
  if (trust.ekCas) {
    await link('ek-certificate', () => {
      const ek = b.ekCertificates.find((c) => createHash('sha256').update(c).digest().equals(cert.ekCertificateSha256));
      if (!ek) throw new ResultFailure('ek-certificate', 'the bundle does not carry the EK certificate the AK certificate names');
      verifyEkCertificate(ek, trust.ekCas!, trust.at);
    });
  }
  return { claims: payload as Record<string, unknown>, lease, akName: ak.name.toString('hex'), ekCertificateSha256: cert.ekCertificateSha256.toString('hex'), statuses };
}

/** The EAR's claims without checking anything, for display after a failure. */
export function peekClaims(ear: string): Record<string, unknown> | undefined {
  try {
    return decodeJwt(ear) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
