/**
 * The Quoting Enclave's report inside a TDX quote (an SGX REPORT body, 384 bytes) and the
 * two checks that tie it to the quote: the PCK key signed the QE report, and the QE report
 * commits to the attestation key and QE authentication data.
 */
import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { AttestdError } from '../../base/errors.js';
import { ByteReader } from '../bytes/reader.js';

export const QE_REPORT_SIZE = 384;

export interface QeReport {
  cpuSvn: Buffer;
  miscSelect: number;
  attributes: Buffer;
  mrEnclave: Buffer;
  mrSigner: Buffer;
  isvProdId: number;
  isvSvn: number;
  reportData: Buffer;
  /** The 384 bytes the PCK key signs. */
  raw: Buffer;
}

/** The fields are views of `raw`. */
export function parseQeReport(raw: Buffer): QeReport {
  const r = new ByteReader(raw, 'le', 'CVM_REPORT_MALFORMED');
  const cpuSvn = r.bytes(16, 'QE CPUSVN');
  const miscSelect = r.u32('QE MISCSELECT');
  r.skip(28, 'QE reserved');
  const attributes = r.bytes(16, 'QE ATTRIBUTES');
  const mrEnclave = r.bytes(32, 'QE MRENCLAVE');
  r.skip(32, 'QE reserved');
  const mrSigner = r.bytes(32, 'QE MRSIGNER');
  r.skip(96, 'QE reserved');
  const isvProdId = r.u16('QE ISVPRODID');
  const isvSvn = r.u16('QE ISVSVN');
  r.skip(60, 'QE reserved');
  const reportData = r.bytes(64, 'QE REPORTDATA');
  r.end('QE report');
  return { cpuSvn, miscSelect, attributes, mrEnclave, mrSigner, isvProdId, isvSvn, reportData, raw };
}

/** A P-256 public key from the raw X||Y form Intel quotes use. */
export function p256FromRaw(xy: Buffer): KeyObject {
  if (xy.length !== 64) throw new AttestdError('TDX_SIGNATURE_INVALID', `P-256 key is ${xy.length} bytes, expected 64`);
  try {
    return createPublicKey({
      key: { kty: 'EC', crv: 'P-256', x: xy.subarray(0, 32).toString('base64url'), y: xy.subarray(32).toString('base64url') },
      format: 'jwk',
    });
  } catch (err) {
    throw new AttestdError('TDX_SIGNATURE_INVALID', 'the attestation key is not a point on P-256', { cause: err });
  }
}

/** ECDSA P-256 with SHA-256 over `data`, signature as raw r||s. */
export function verifyP256Raw(key: KeyObject, data: Buffer, rs: Buffer): boolean {
  if (rs.length !== 64) return false;
  try {
    return cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, rs);
  } catch {
    return false;
  }
}

/** Throws TDX_SIGNATURE_INVALID unless the PCK key signed the QE report. */
export function verifyQeReportSignature(report: QeReport, signature: Buffer, pckKey: KeyObject): void {
  if (!verifyP256Raw(pckKey, report.raw, signature)) {
    throw new AttestdError('TDX_SIGNATURE_INVALID', 'the QE report signature does not verify with the PCK certificate key');
  }
}

/**
 * Throws TDX_SIGNATURE_INVALID unless QE REPORTDATA[0..32] is SHA-256(attestation key ||
 * QE auth data) and REPORTDATA[32..64] is zero: this is what makes the attestation key the
 * Quoting Enclave's own.
 */
export function verifyQeReportData(report: QeReport, attestationKey: Buffer, qeAuthData: Buffer): void {
  const expected = createHash('sha256').update(attestationKey).update(qeAuthData).digest();
  if (!expected.equals(report.reportData.subarray(0, 32))) {
    throw new AttestdError('TDX_SIGNATURE_INVALID', 'QE report data does not commit to the attestation key and QE auth data');
  }
  if (report.reportData.subarray(32).some((b) => b !== 0)) {
    throw new AttestdError('TDX_SIGNATURE_INVALID', 'QE report data bytes 32..64 are not zero');
  }
}
