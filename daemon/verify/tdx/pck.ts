/**
 * The PCK certificate chain (PCK -> Intel SGX PCK Platform/Processor CA -> Intel SGX Root CA),
 * the same walk for the TCB signing chain, revocation by CRL, and Intel's SGX extensions in
 * the PCK certificate (Intel SGX PCK Certificate and CRL Profile, OID 1.2.840.113741.1.13.1).
 */
import { AttestdError, type ErrorCode } from '../../base/errors.js';
import { Asn1Reader, TAG, type Asn1Node } from '../x509/asn1.js';
import { memo } from '../x509/cache.js';
import { spkiSha256 } from '../x509/certificate.js';
import { isSelfSigned, linkProblem, signedBy } from '../x509/chain.js';
import { crlSignedBy } from '../x509/crl.js';
import type { IntelCertificate, IntelCrl } from './intel-certificate.js';

export { firstInvalidAt } from '../x509/chain.js';

/**
 * SHA-256 of the SubjectPublicKeyInfo of the Intel SGX Root CA ("CN=Intel SGX Root CA",
 * self-signed, valid 2018-05-21..2049-12-31), computed from the fixture
 * tdx/intel_sgx_root_ca.pem. Every chain must end in a root with exactly this key.
 */
export const INTEL_SGX_ROOT_SPKI_SHA256 = 'a0af031289f5d5d4132f9186068a7fc13628633ba235777472e29b6b6c67a49e';

const SGX_EXT = '1.2.840.113741.1.13.1';

export interface PckExtensions {
  ppid: Buffer;
  /** SGX TCB component SVNs 1..16. */
  sgxTcbComponents: number[];
  pceSvn: number;
  cpuSvn: Buffer;
  pceId: Buffer;
  fmspc: Buffer;
  /** 0 = Standard, 1 = Scalable, 2 = Scalable with integrity. */
  sgxType: number;
}

/**
 * Checks that `certs` (leaf first) is one chain ending in a trusted root (by default the
 * pinned Intel root; `rootSpkis` when the operator configured others): each
 * certificate's issuer name is the next one's subject, each is signed by the next one's key,
 * every issuer is a CA, and the root is self-signed. Validity in time is checked apart,
 * by firstExpired, because callers treat expiry differently. Throws `code`.
 */
export function verifyChainToRoot(certs: IntelCertificate[], code: ErrorCode, rootSpkis: readonly string[] = [INTEL_SGX_ROOT_SPKI_SHA256]): void {
  if (certs.length < 2) throw new AttestdError(code, `chain has ${certs.length} certificate(s); at least leaf and root are needed`);
  const root = certs[certs.length - 1]!;
  if (!rootSpkis.includes(spkiSha256(root))) throw new AttestdError(code, `chain ends in "${root.subjectCn}", not a trusted Intel SGX Root CA key`);
  if (!isSelfSigned(root)) throw new AttestdError(code, 'the root certificate is not validly self-signed');
  for (let i = 0; i < certs.length - 1; i++) {
    const cert = certs[i]!;
    const issuer = certs[i + 1]!;
    const problem = linkProblem(cert, issuer, i, { keyUsage: false, pathLength: false });
    if (problem === 'issuer-name') throw new AttestdError(code, `"${cert.subjectCn}" is not issued by "${issuer.subjectCn}"`);
    if (problem) throw new AttestdError(code, `"${issuer.subjectCn}" is not a CA`);
    if (!signedBy(cert, issuer)) {
      throw new AttestdError(code, `the signature on "${cert.subjectCn}" does not verify with "${issuer.subjectCn}"`);
    }
  }
}

/**
 * Checks `crl` was issued by `issuer` (name and signature) and that `cert` is not on it.
 * Freshness is the caller's decision. Throws TDX_COLLATERAL_INVALID for a CRL that is not
 * the issuer's, CERT_REVOKED when the certificate is listed.
 */
export function checkNotRevoked(cert: IntelCertificate, issuer: IntelCertificate, crl: IntelCrl): void {
  if (!crl.issuer.equals(issuer.subject)) {
    throw new AttestdError('TDX_COLLATERAL_INVALID', `CRL from "${crl.issuerCn}" is not from "${issuer.subjectCn}"`);
  }
  if (!crlSignedBy(crl, issuer.publicKey)) {
    throw new AttestdError('TDX_COLLATERAL_INVALID', `CRL signature does not verify with "${issuer.subjectCn}"`);
  }
  if (crl.revokedSerials.has(cert.serialHex)) {
    throw new AttestdError('CERT_REVOKED', `"${cert.subjectCn}" serial ${cert.serialHex} is revoked by the "${crl.issuerCn}" CRL`);
  }
}

/**
 * Intel's SGX extension of a PCK certificate; TDX_CERT_CHAIN_INVALID when absent or malformed.
 * Decoded once per certificate; each caller gets its own copy.
 */
export function pckExtensions(cert: IntelCertificate): PckExtensions {
  const value = cert.extensions.get(SGX_EXT);
  if (!value) throw new AttestdError('TDX_CERT_CHAIN_INVALID', 'the PCK certificate has no SGX extension');
  const e = memo(cert, 'sgx-extension', () => readSgxExtension(value));
  return {
    ...e,
    ppid: Buffer.from(e.ppid),
    sgxTcbComponents: [...e.sgxTcbComponents],
    cpuSvn: Buffer.from(e.cpuSvn),
    pceId: Buffer.from(e.pceId),
    fmspc: Buffer.from(e.fmspc),
  };
}

function readSgxExtension(value: Buffer): PckExtensions {
  const r: Asn1Reader = new Asn1Reader('TDX_CERT_CHAIN_INVALID');
  const top = r.expect(r.decode(value, 'SGX extension'), TAG.SEQUENCE, 'SGX extension');
  const fields = pairs(r, r.children(top, 'SGX extension'), SGX_EXT);
  const tcbT = fields.get('2');
  if (!tcbT || r.tagOf(tcbT) !== TAG.SEQUENCE) r.fail('SGX extension has no TCB');
  const tcb = pairs(r, r.children(tcbT, 'SGX TCB'), `${SGX_EXT}.2`);
  const sgxTcbComponents: number[] = [];
  for (let i = 1; i <= 16; i++) sgxTcbComponents.push(r.smallUint(tcb.get(String(i)) ?? r.fail(`TCB component ${i} missing`)));
  const octets = (t: Asn1Node | undefined, len: number, what: string): Buffer => {
    if (!t || r.tagOf(t) !== TAG.OCTET_STRING || r.content(t).length !== len) r.fail(`SGX extension ${what} is missing or not ${len} bytes`);
    return Buffer.from(r.content(t));
  };
  return {
    ppid: octets(fields.get('1'), 16, 'PPID'),
    sgxTcbComponents,
    pceSvn: r.smallUint(tcb.get('17') ?? r.fail('PCESVN missing')),
    cpuSvn: octets(tcb.get('18'), 16, 'CPUSVN'),
    pceId: octets(fields.get('3'), 2, 'PCE-ID'),
    fmspc: octets(fields.get('4'), 6, 'FMSPC'),
    // The profile declares the SGX type ENUMERATED, unlike the SVNs.
    sgxType: r.smallUint(fields.get('5') ?? r.fail('SGX type missing'), TAG.ENUMERATED),
  };
}

/** SEQUENCE { OID base.N, value } entries keyed by N; a repeated N is malformed. */
function pairs(r: Asn1Reader, items: Asn1Node[], base: string): Map<string, Asn1Node> {
  const out = new Map<string, Asn1Node>();
  for (const item of items) {
    const [oidT, valueT, ...rest] = r.children(item, `${base} entry`);
    if (!oidT || !valueT || rest.length) r.fail(`${base}: entry is not an OID and a value`);
    const oid = r.oid(oidT);
    if (!oid.startsWith(base + '.')) continue;
    const key = oid.slice(base.length + 1);
    if (out.has(key)) r.fail(`${base}.${key} appears twice`);
    out.set(key, valueT);
  }
  return out;
}
