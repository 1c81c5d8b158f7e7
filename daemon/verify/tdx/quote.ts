/**
 * Intel TDX ECDSA quotes, versions 4 and 5 (Intel TDX DCAP Quote Generation Library and
 * Quote Verification Library, "Quote Format"): a 48-byte header, a TD report body, and the
 * ECDSA-P256 signature data whose certification data is a QE report (type 6) wrapping the
 * PCK certificate chain (type 5).
 *
 * The parser only splits bytes; nothing here is trusted until verify.ts has checked the
 * signatures. It refuses SGX quotes (TEE type 0), unknown versions, key types and body types,
 * and every length that does not fit; failures are CVM_REPORT_MALFORMED.
 */
import { AttestdError } from '../../base/errors.js';
import { ByteReader } from '../bytes/reader.js';
import { parseQeReport, QE_REPORT_SIZE, type QeReport } from './qe.js';

export const TEE_TYPE_TDX = 0x81;
export const ATT_KEY_ECDSA_P256 = 2;
export const HEADER_SIZE = 48;
export const TD_REPORT_10_SIZE = 584;
export const TD_REPORT_15_SIZE = 648;
/** Largest quote accepted: real quotes are ~5 KiB; the PCK chain is the only variable part. */
export const MAX_QUOTE_SIZE = 64 * 1024;
const CERT_DATA_QE_REPORT = 6;
const CERT_DATA_PCK_CHAIN = 5;

export interface TdxQuoteHeader {
  version: number;
  attestationKeyType: number;
  teeType: number;
  qeVendorId: Buffer;
  userData: Buffer;
}

export interface TdReportBody {
  /** 2 = TD report 1.0 (also what every v4 quote carries), 3 = TD report 1.5. */
  bodyType: number;
  teeTcbSvn: Buffer;
  mrSeam: Buffer;
  mrSignerSeam: Buffer;
  seamAttributes: Buffer;
  tdAttributes: Buffer;
  xfam: Buffer;
  mrTd: Buffer;
  mrConfigId: Buffer;
  mrOwner: Buffer;
  mrOwnerConfig: Buffer;
  rtmrs: [Buffer, Buffer, Buffer, Buffer];
  reportData: Buffer;
  /** TD report 1.5 only. */
  teeTcbSvn2?: Buffer;
  mrServiceTd?: Buffer;
}

export interface TdxQuote {
  header: TdxQuoteHeader;
  body: TdReportBody;
  /** The bytes the quote signature covers: header, (v5) body descriptor, and body. */
  signedBytes: Buffer;
  /** Raw r||s, 64 bytes. */
  signature: Buffer;
  /** Raw X||Y of the P-256 attestation key, 64 bytes. */
  attestationKey: Buffer;
  qeReport: QeReport;
  qeReportSignature: Buffer;
  qeAuthData: Buffer;
  /** The PEM text of the PCK certificate chain, as embedded (leaf first). */
  pckChainPem: string;
  /** Bytes after the declared signature data; not signed, counted and otherwise ignored. */
  trailingBytes: number;
}

function malformed(message: string): never {
  throw new AttestdError('CVM_REPORT_MALFORMED', message);
}

export function parseTdxQuote(bytes: Uint8Array): TdxQuote {
  if (!(bytes instanceof Uint8Array)) malformed('quote must be bytes');
  if (bytes.byteLength > MAX_QUOTE_SIZE) malformed(`quote is ${bytes.byteLength} bytes, over ${MAX_QUOTE_SIZE}`);
  // One copy: every field is a view of it, so none aliases the caller's buffer.
  const buf = Buffer.from(bytes);
  const r = new ByteReader(buf, 'le', 'CVM_REPORT_MALFORMED');
  const header = parseHeader(r);
  let bodyType = 2;
  let bodySize = TD_REPORT_10_SIZE;
  if (header.version === 5) {
    bodyType = r.u16('body type');
    bodySize = r.u32('body size');
    const expected = bodyType === 2 ? TD_REPORT_10_SIZE : bodyType === 3 ? TD_REPORT_15_SIZE : -1;
    if (expected < 0) malformed(`quote body type ${bodyType} is not a TD report (2 or 3)`);
    if (bodySize !== expected) malformed(`body type ${bodyType} has size ${bodySize}, expected ${expected}`);
  }
  const body = parseBody(r.sub(bodySize, 'TD report body'), bodyType);
  const signedBytes = buf.subarray(0, r.offset);
  const sigLen = r.u32('signature data length');
  const sig = r.sub(sigLen, 'signature data');
  const trailingBytes = r.remaining;

  const signature = sig.bytes(64, 'quote signature');
  const attestationKey = sig.bytes(64, 'attestation key');
  const certType = sig.u16('certification data type');
  if (certType !== CERT_DATA_QE_REPORT) malformed(`certification data type ${certType}, expected 6 (QE report)`);
  const certSize = sig.u32('certification data size');
  const cert = sig.sub(certSize, 'certification data');
  sig.end('signature data');

  const qeReport = parseQeReport(cert.bytes(QE_REPORT_SIZE, 'QE report'));
  const qeReportSignature = cert.bytes(64, 'QE report signature');
  const authSize = cert.u16('QE auth data size');
  const qeAuthData = cert.bytes(authSize, 'QE auth data');
  const innerType = cert.u16('inner certification data type');
  if (innerType !== CERT_DATA_PCK_CHAIN) malformed(`inner certification data type ${innerType}, expected 5 (PCK chain)`);
  const innerSize = cert.u32('PCK chain size');
  const chain = cert.bytes(innerSize, 'PCK chain');
  cert.end('QE report certification data');

  return {
    header, body, signedBytes, signature, attestationKey, qeReport, qeReportSignature, qeAuthData,
    pckChainPem: pemText(chain), trailingBytes,
  };
}

function parseHeader(r: ByteReader): TdxQuoteHeader {
  const version = r.u16('version');
  const attestationKeyType = r.u16('attestation key type');
  const teeType = r.u32('TEE type');
  if (teeType === 0) malformed('this is an SGX quote (TEE type 0), not a TDX quote');
  if (teeType !== TEE_TYPE_TDX) malformed(`TEE type 0x${teeType.toString(16)} is not TDX (0x81)`);
  if (version !== 4 && version !== 5) malformed(`quote version ${version} is not supported (4 or 5)`);
  if (attestationKeyType !== ATT_KEY_ECDSA_P256) malformed(`attestation key type ${attestationKeyType} is not ECDSA P-256 (2)`);
  r.skip(4, 'header reserved');
  const qeVendorId = r.bytes(16, 'QE vendor id');
  const userData = r.bytes(20, 'user data');
  return { version, attestationKeyType, teeType, qeVendorId, userData };
}

function parseBody(r: ByteReader, bodyType: number): TdReportBody {
  const b = (n: number, what: string): Buffer => r.bytes(n, what);
  const body: TdReportBody = {
    bodyType,
    teeTcbSvn: b(16, 'TEE_TCB_SVN'), mrSeam: b(48, 'MRSEAM'), mrSignerSeam: b(48, 'MRSIGNERSEAM'),
    seamAttributes: b(8, 'SEAMATTRIBUTES'), tdAttributes: b(8, 'TDATTRIBUTES'), xfam: b(8, 'XFAM'),
    mrTd: b(48, 'MRTD'), mrConfigId: b(48, 'MRCONFIGID'), mrOwner: b(48, 'MROWNER'),
    mrOwnerConfig: b(48, 'MROWNERCONFIG'),
    rtmrs: [b(48, 'RTMR0'), b(48, 'RTMR1'), b(48, 'RTMR2'), b(48, 'RTMR3')],
    reportData: b(64, 'REPORTDATA'),
  };
  if (bodyType === 3) {
    body.teeTcbSvn2 = b(16, 'TEE_TCB_SVN2');
    body.mrServiceTd = b(48, 'MRSERVICETD');
  }
  r.end('TD report body');
  return body;
}

/** The chain is PEM text, possibly NUL-terminated; anything else in it is malformed. */
function pemText(chain: Buffer): string {
  let end = chain.length;
  while (end > 0 && chain[end - 1] === 0) end--;
  for (let i = 0; i < end; i++) {
    const c = chain[i]!;
    if (c !== 0x0a && c !== 0x0d && (c < 0x20 || c > 0x7e)) malformed(`PCK chain has a non-PEM byte at ${i}`);
  }
  return chain.subarray(0, end).toString('latin1');
}
