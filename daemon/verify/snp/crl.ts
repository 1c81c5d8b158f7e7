/**
 * AMD's certificate revocation lists. AMD KDS publishes one CRL per product
 * (/vcek/v1/{product}/crl), issued and signed by that product's ARK, listing revoked ASKs and
 * ASVKs. A CRL is optional collateral: without one, revocation is not checked (and the
 * verifier says so); with one for the chain's ARK, it must be the ARK's, fresh, and must not
 * list the chain's ASK or ASVK. CRLs from other ARKs (other products) are not this chain's
 * and are passed over.
 */
import { AttestdError } from '../../base/errors.js';
import { crlSignedBy, parseCrl, type Crl } from '../x509/crl.js';
import type { AmdChain } from './chain.js';

const SNP_CRL_CODE = 'SNP_CERT_CHAIN_INVALID';

/** Parses each CRL (DER); a CRL that does not parse is refused, not ignored. */
export function parseAmdCrls(ders: readonly Uint8Array[]): Crl[] {
  return ders.map((der) => parseCrl(der, SNP_CRL_CODE));
}

/** Whether `der` parses as a CRL issued under an AMD ARK name (collateral sorting). */
export function looksLikeAmdCrl(der: Uint8Array): boolean {
  try {
    return parseCrl(der, SNP_CRL_CODE).issuerCommonName?.startsWith('ARK-') === true;
  } catch {
    return false;
  }
}

/**
 * Checks, for every CRL issued under the chain's ARK name: it is signed by the ARK's key
 * (SNP_CERT_CHAIN_INVALID); `at` is between its thisUpdate and nextUpdate (COLLATERAL_STALE);
 * the ASK or ASVK serial is not listed (CERT_REVOKED). The leaf is the ASK's or ASVK's to
 * revoke, not the ARK's, so its serial is not looked up here. Returns what was checked, for the
 * check's detail: "not checked" when no CRL was the ARK's.
 */
export function checkAmdRevocation(chain: AmdChain, crls: readonly Crl[], at: Date): string {
  const mine = crls.filter((c) => c.issuer.equals(chain.ark.subject));
  const mid = chain.kind === 'VCEK' ? 'ASK' : 'ASVK';
  for (const crl of mine) {
    if (!crlSignedBy(crl, chain.ark.publicKey)) {
      throw new AttestdError(SNP_CRL_CODE, `the CRL of "${crl.issuerCommonName ?? ''}" does not verify with the ARK key`);
    }
    if (at < crl.thisUpdate || (crl.nextUpdate !== undefined && at > crl.nextUpdate)) {
      const next = crl.nextUpdate?.toISOString() ?? 'none';
      throw new AttestdError('COLLATERAL_STALE', `the AMD CRL is for ${crl.thisUpdate.toISOString()} .. ${next}, not ${at.toISOString()}`);
    }
    if (crl.revokedSerials.has(chain.intermediate.serialHex)) {
      throw new AttestdError('CERT_REVOKED', `the ${mid} (serial ${chain.intermediate.serialHex}) is revoked by the AMD CRL`);
    }
  }
  return mine.length === 0 ? 'no CRL from this ARK: not checked' : `${mid} not revoked (${mine.length} CRL)`;
}
