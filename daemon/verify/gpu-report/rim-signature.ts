/**
 * The XML signature on an NVIDIA RIM: one enveloped XML-DSig <Signature>, a child of the
 * root, with C14N 1.1, ECDSA-SHA384 over SignedInfo, one Reference URI="" with transforms
 * [enveloped-signature, C14N 1.1] and a SHA-384 digest; KeyInfo/X509Data carries the signer
 * certificate and its chain. Only that shape is accepted: signature-wrapping attacks live in
 * the latitude a verifier allows.
 *
 * C14N 1.1 is computed with xml-crypto's inclusive C14N 1.0. The two differ only in how
 * xml:id and xml:base are inherited by a document subset, so a document carrying any xml:*
 * attribute where that could matter is refused rather than canonicalized differently.
 */
import { createHash, verify as cryptoVerify, type KeyLike, type KeyObject } from 'node:crypto';
import type { Element } from '@xmldom/xmldom';
import type * as XmlCrypto from 'xml-crypto';
import { lazyRequire } from '../../base/lazy-require.js';

const xmlCrypto = lazyRequire<typeof XmlCrypto>('xml-crypto');
import { EnvelopedSignature } from 'xml-crypto/lib/enveloped-signature.js';
import { AttestdError } from '../../base/errors.js';
import { NVIDIA_RIM_ROOT_SPKI_SHA256, commonNameOf, verifyChain, type NvidiaCertificate } from './chain.js';
import { rimFromElement, type Rim } from './rim.js';
import { childElements, onlyChild, parseXml, rimText } from './xml.js';

const DSIG = 'http://www.w3.org/2000/09/xmldsig#';
const XML_NS = 'http://www.w3.org/XML/1998/namespace';
const C14N11 = 'http://www.w3.org/2006/12/xml-c14n11';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
const ECDSA_SHA384 = 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384';
const SHA384 = 'http://www.w3.org/2001/04/xmldsig-more#sha384';
const MAX_KEYINFO_CERTS = 8;

export interface RimVerifyOptions {
  /** Trust these root certificates instead of the pinned NVIDIA CoRIM signing root. */
  roots?: readonly NvidiaCertificate[];
  /** When the signing chain must be valid. */
  at: Date;
}

export interface VerifiedRim {
  rim: Rim;
  signer: { commonName: string; serialHex: string; notBefore: Date; notAfter: Date };
  rootSpkiSha256: string;
  /** SHA-384 of the canonical signed content, hex: names exactly what was appraised against. */
  contentSha384: string;
}

function invalid(why: string, cause?: unknown): AttestdError {
  return new AttestdError('RIM_INVALID', `RIM signature: ${why}`, cause === undefined ? undefined : { cause });
}

class Sha384 {
  getHash(xml: string): string {
    return createHash('sha384').update(xml, 'utf8').digest('base64');
  }

  getAlgorithmName(): string {
    return SHA384;
  }
}

/** XML-DSig ECDSA signature values are r || s (RFC 4050 / XMLDSig 1.1), not DER. */
class EcdsaSha384 {
  getSignature(): never {
    throw invalid('signing is not supported');
  }

  verifySignature(material: string, key: KeyLike, signatureValue: string): boolean {
    const sig = Buffer.from(signatureValue, 'base64');
    if (sig.length !== 96) return false;
    try {
      return cryptoVerify('sha384', Buffer.from(material, 'utf8'), { key: key as KeyObject, dsaEncoding: 'ieee-p1363' }, sig);
    } catch {
      return false;
    }
  }

  getAlgorithmName(): string {
    return ECDSA_SHA384;
  }
}

function algorithm(parent: Element, name: string): string {
  return onlyChild(parent, DSIG, name).getAttribute('Algorithm') ?? '';
}

/** Checks the fixed shape and returns the Signature element and the KeyInfo certificates. */
function signatureShape(root: Element): { signature: Element; certs: Buffer[] } {
  const all = root.ownerDocument?.getElementsByTagNameNS(DSIG, 'Signature');
  const signatures = childElements(root, DSIG, 'Signature');
  if (signatures.length !== 1 || all?.length !== 1) throw invalid('there must be exactly one Signature, a child of the root');
  const signature = signatures[0] as Element;
  for (const el of [root, signature]) {
    const attrs = el.attributes;
    for (let i = 0; i < attrs.length; i++) {
      if (attrs.item(i)?.namespaceURI === XML_NS) throw invalid('xml:* attributes above SignedInfo are not supported');
    }
  }
  const signedInfo = onlyChild(signature, DSIG, 'SignedInfo');
  if (algorithm(signedInfo, 'CanonicalizationMethod') !== C14N11) throw invalid('SignedInfo is not canonicalized with C14N 1.1');
  if (algorithm(signedInfo, 'SignatureMethod') !== ECDSA_SHA384) throw invalid('the signature method is not ECDSA-SHA384');
  const reference = onlyChild(signedInfo, DSIG, 'Reference');
  if (reference.getAttribute('URI') !== '') throw invalid('the Reference is not to the whole document (URI="")');
  const transforms = childElements(onlyChild(reference, DSIG, 'Transforms'), DSIG, 'Transform').map((t) => t.getAttribute('Algorithm'));
  if (transforms.length !== 2 || transforms[0] !== ENVELOPED || transforms[1] !== C14N11) {
    throw invalid('the Reference transforms are not [enveloped-signature, C14N 1.1]');
  }
  if (algorithm(reference, 'DigestMethod') !== SHA384) throw invalid('the Reference digest is not SHA-384');

  const x509Data = onlyChild(onlyChild(signature, DSIG, 'KeyInfo'), DSIG, 'X509Data');
  const certNodes = childElements(x509Data, DSIG, 'X509Certificate');
  if (certNodes.length === 0 || certNodes.length > MAX_KEYINFO_CERTS) throw invalid(`KeyInfo must hold 1..${MAX_KEYINFO_CERTS} certificates`);
  const certs = certNodes.map((n) => {
    const b64 = (n.textContent ?? '').replace(/[\r\n\t ]/g, '');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) throw invalid('an X509Certificate is not base64');
    return Buffer.from(b64, 'base64');
  });
  return { signature, certs };
}

/** Runs xml-crypto with only the algorithms the shape check allowed. */
function checkXmlSignature(text: string, signature: Element, key: KeyObject): string {
  const { SignedXml, C14nCanonicalization } = xmlCrypto();
  const sig = new SignedXml({ publicCert: key });
  sig.CanonicalizationAlgorithms = { [C14N11]: C14nCanonicalization, [ENVELOPED]: EnvelopedSignature };
  sig.HashAlgorithms = { [SHA384]: Sha384 };
  sig.SignatureAlgorithms = { [ECDSA_SHA384]: EcdsaSha384 };
  let ok: boolean;
  try {
    sig.loadSignature(signature);
    ok = sig.checkSignature(text);
  } catch (err) {
    if (err instanceof AttestdError) throw err;
    throw invalid(`does not verify: ${err instanceof Error ? err.message.slice(0, 200) : String(err)}`, err);
  }
  const signed = sig.getSignedReferences();
  if (!ok || signed.length !== 1 || signed[0] === undefined) throw invalid('the reference digest does not match the document');
  return signed[0];
}

/**
 * Verifies a RIM and returns its content as signed. Checks, in order: size, no DTD,
 * well-formed XML (RIM_INVALID); the signature shape above (RIM_INVALID); the KeyInfo chain,
 * signer first, reaches the pinned NVIDIA CoRIM signing root or one of `roots`, with the
 * rules of chain.ts (RIM_INVALID; COLLATERAL_STALE when a certificate is not valid at `at`);
 * the Reference digest over the document without its Signature, and the ECDSA-SHA384
 * signature over SignedInfo with the signer's key (RIM_INVALID); then the content is read
 * from the canonical bytes that were digested, not from the document as received.
 */
export function verifyRim(xml: string | Uint8Array, opts: RimVerifyOptions): VerifiedRim {
  const text = rimText(xml);
  const doc = parseXml(text);
  const root = doc.documentElement as Element;
  const { signature, certs } = signatureShape(root);
  const chain = verifyChain(certs, { code: 'RIM_INVALID', what: 'RIM signing', roots: opts.roots, pin: NVIDIA_RIM_ROOT_SPKI_SHA256, at: opts.at });
  const canonical = checkXmlSignature(text, signature, chain.leaf.publicKey);
  const signedRoot = parseXml(canonical).documentElement as Element;
  return {
    rim: rimFromElement(signedRoot),
    signer: { commonName: commonNameOf(chain.leaf), serialHex: chain.leaf.serialHex, notBefore: chain.leaf.notBefore, notAfter: chain.leaf.notAfter },
    rootSpkiSha256: chain.rootSpkiSha256,
    contentSha384: createHash('sha384').update(canonical, 'utf8').digest('hex'),
  };
}
