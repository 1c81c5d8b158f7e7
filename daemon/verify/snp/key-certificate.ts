/**
 * Verification of a VCEK or VLEK certificate on its own, without a report: for caching a
 * key fetched from AMD KDS or a cloud provider before any report arrives, and for products
 * whose keys are at hand before their reports are.
 */
import { checkArkTrusted, checkChainSignatures, checkChainValidity, parseAmdChain } from './chain.js';
import { AttestdError } from '../../base/errors.js';
import { productOfName } from './tcb.js';
import type { AmdKeyExtensions, SnpProduct, SnpSigningKey } from './types.js';
import { parseAmdExtensions } from './vcek-extensions.js';
import type { SnpChain } from './verify.js';

export interface VerifiedSnpKeyCertificate {
  kind: SnpSigningKey;
  product: SnpProduct;
  extensions: AmdKeyExtensions;
  arkSpkiSha256: string;
}

/**
 * Checks, in order (the first that fails throws AttestdError): the three certificates parse
 * (SNP_CERT_CHAIN_INVALID); the ARK is a pinned AMD root or one of `trustedArks`
 * (SNP_CERT_CHAIN_INVALID); signatures, names, CA flags and AMD naming along the chain, as
 * for verifySnpReport (SNP_CERT_CHAIN_INVALID); validity at `at`, default now
 * (COLLATERAL_STALE); the AMD extensions parse and productName is the chain's product
 * (SNP_CERT_CHAIN_INVALID).
 */
export function verifySnpKeyCertificate(input: {
  cert: Uint8Array;
  chain: SnpChain;
  at?: Date;
  trustedArks?: readonly Uint8Array[];
}): VerifiedSnpKeyCertificate {
  const kind: SnpSigningKey = 'asvk' in input.chain ? 'VLEK' : 'VCEK';
  const mid = 'asvk' in input.chain ? input.chain.asvk : input.chain.ask;
  const chain = parseAmdChain(kind, input.cert, mid, input.chain.ark);
  const arkSpkiSha256 = checkArkTrusted(chain, input.trustedArks);
  const product = checkChainSignatures(chain);
  checkChainValidity(chain, input.at ?? new Date());
  const extensions = parseAmdExtensions(chain.leaf.extensions);
  const named = extensions.productName === undefined ? undefined : productOfName(extensions.productName);
  if (named !== product) {
    throw new AttestdError('SNP_CERT_CHAIN_INVALID', `the certificate's productName "${extensions.productName ?? ''}" is not ${product}`);
  }
  return { kind, product, extensions, arkSpkiSha256 };
}
