/**
 * Picks TDX collateral out of a set of files by what they contain, not by their names:
 * certificates (PEM or DER) by subject and issuer, CRLs (DER or PEM) by issuer, TCB info and
 * QE identity by their JSON type and, for TCB info, the platform's FMSPC. Every input is
 * untrusted: a file that is not recognisable collateral is listed as ignored with a reason,
 * and nothing picked here is trusted until verify.ts has checked its signature.
 */
import { AttestdError } from '../../base/errors.js';
import { isKnownCrl } from '../x509/crl.js';
import { pemBlocks } from '../x509/pem.js';
import { intelPemCertificates, parseIntelCertificate, parseIntelCrl, type IntelCertificate, type IntelCrl } from './intel-certificate.js';
import { parseSignedJson, type SignedJson } from './signed-json.js';
import { tdxTcbInfo, type TdxTcbInfo } from './tcb-info.js';
import { qeIdentity, type QeIdentity } from './qe-identity.js';

export interface CollateralFile {
  name: string;
  bytes: Uint8Array;
}

export interface TdxCollateral {
  tcbInfo?: { name: string; doc: SignedJson; info: TdxTcbInfo };
  qeIdentity?: { name: string; doc: SignedJson; identity: QeIdentity };
  crls: { name: string; crl: IntelCrl }[];
  /** Certificates named "Intel SGX TCB Signing": candidates to have signed TCB info and QE identity. */
  tcbSigningCerts: { name: string; cert: IntelCertificate }[];
  /** Every other certificate found (CAs), by subject. */
  otherCerts: { name: string; cert: IntelCertificate }[];
  ignored: { name: string; reason: string }[];
}

export const MAX_COLLATERAL_FILES = 256;
export const MAX_COLLATERAL_FILE_SIZE = 1024 * 1024;
const TCB_SIGNING_CN = 'Intel SGX TCB Signing';

/**
 * Sorts `files` into collateral. With `fmspc`, only TCB info for that FMSPC is kept. Where
 * several TCB infos or QE identities remain, the most recent one issued by `at` wins (or,
 * when none was issued by then, the most recent one).
 */
export function pickCollateral(files: readonly CollateralFile[], fmspc?: Buffer, at?: Date): TdxCollateral {
  if (!Array.isArray(files)) throw new AttestdError('INVALID_ARGUMENT', 'collateral must be a list of files');
  if (files.length > MAX_COLLATERAL_FILES) throw new AttestdError('INVALID_ARGUMENT', `more than ${MAX_COLLATERAL_FILES} collateral files`);
  const out: TdxCollateral = { crls: [], tcbSigningCerts: [], otherCerts: [], ignored: [] };
  for (const file of files) {
    const name = String(file?.name);
    const bytes = file?.bytes;
    if (!(bytes instanceof Uint8Array)) {
      out.ignored.push({ name, reason: 'not bytes' });
      continue;
    }
    if (bytes.byteLength > MAX_COLLATERAL_FILE_SIZE) {
      out.ignored.push({ name, reason: `${bytes.byteLength} bytes is too large for collateral` });
      continue;
    }
    try {
      classify(name, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), out, fmspc, at);
    } catch (err) {
      if (!(err instanceof AttestdError)) throw err;
      out.ignored.push({ name, reason: err.message });
    }
  }
  return out;
}

function classify(name: string, buf: Buffer, out: TdxCollateral, fmspc: Buffer | undefined, at: Date | undefined): void {
  const head = buf.subarray(0, 64).toString('latin1').trimStart();
  if (head.startsWith('{')) return classifyJson(name, buf, out, fmspc, at);
  if (head.startsWith('-----BEGIN CERTIFICATE-----')) {
    for (const der of intelPemCertificates(buf, 'TDX_COLLATERAL_INVALID', 16)) addCert(name, parseIntelCertificate(der, 'TDX_COLLATERAL_INVALID'), out);
    return;
  }
  if (head.startsWith('-----BEGIN X509 CRL-----')) {
    const [der] = pemBlocks(buf, 'X509 CRL', 'TDX_COLLATERAL_INVALID', { max: 1, nothingAfter: true });
    out.crls.push({ name, crl: parseIntelCrl(der ?? Buffer.alloc(0)) });
    return;
  }
  if (buf[0] === 0x30) {
    // DER: a certificate's TBS opens with a SEQUENCE or [0], a CRL's with a version INTEGER or an AlgorithmIdentifier.
    if (isKnownCrl(buf)) {
      out.crls.push({ name, crl: parseIntelCrl(buf) });
      return;
    }
    try {
      addCert(name, parseIntelCertificate(buf, 'TDX_COLLATERAL_INVALID'), out);
    } catch {
      out.crls.push({ name, crl: parseIntelCrl(buf) });
    }
    return;
  }
  out.ignored.push({ name, reason: 'not a certificate, CRL, TCB info or QE identity' });
}

function classifyJson(name: string, buf: Buffer, out: TdxCollateral, fmspc: Buffer | undefined, at: Date | undefined): void {
  const text = buf.subarray(0, 256).toString('utf8');
  if (/^\s*\{\s*"tcbInfo"\s*:/.test(text) || text.includes('"tcbInfo"')) {
    const doc = parseSignedJson(buf, 'tcbInfo');
    const info = tdxTcbInfo(doc);
    if (fmspc && !info.fmspc.equals(fmspc)) {
      out.ignored.push({ name, reason: `TCB info for FMSPC ${info.fmspc.toString('hex')}, not ${fmspc.toString('hex')}` });
      return;
    }
    if (!out.tcbInfo || preferred(info.issueDate, out.tcbInfo.info.issueDate, at)) {
      if (out.tcbInfo) out.ignored.push({ name: out.tcbInfo.name, reason: 'another TCB info fits the verification time better' });
      out.tcbInfo = { name, doc, info };
    } else {
      out.ignored.push({ name, reason: 'another TCB info fits the verification time better' });
    }
    return;
  }
  if (text.includes('"enclaveIdentity"')) {
    const doc = parseSignedJson(buf, 'enclaveIdentity');
    const identity = qeIdentity(doc);
    if (!out.qeIdentity || preferred(identity.issueDate, out.qeIdentity.identity.issueDate, at)) {
      if (out.qeIdentity) out.ignored.push({ name: out.qeIdentity.name, reason: 'another QE identity fits the verification time better' });
      out.qeIdentity = { name, doc, identity };
    } else {
      out.ignored.push({ name, reason: 'another QE identity fits the verification time better' });
    }
    return;
  }
  out.ignored.push({ name, reason: 'JSON that is neither TCB info nor QE identity' });
}

function addCert(name: string, cert: IntelCertificate, out: TdxCollateral): void {
  if (cert.subjectCn === TCB_SIGNING_CN && !cert.isCa) out.tcbSigningCerts.push({ name, cert });
  else out.otherCerts.push({ name, cert });
}

/** True when a document issued at `candidate` should replace one issued at `current`. */
function preferred(candidate: Date, current: Date, at: Date | undefined): boolean {
  if (at) {
    const candOk = candidate <= at;
    const curOk = current <= at;
    if (candOk !== curOk) return candOk;
  }
  return candidate > current;
}
