/**
 * Verification of an NVIDIA GPU (or NVSwitch) attestation report against its device
 * certificate chain, and appraisal of its measurements against signed RIMs. Pure: no I/O,
 * no clock unless the caller leaves `at` out; shared with the offline verifier.
 */
import { CheckRunner } from '../check-runner.js';
import { AttestdError } from '../../base/errors.js';
import { spkiSha256 } from '../x509/certificate.js';
import { NVIDIA_DEVICE_ROOT_SPKI_SHA256, commonNameOf, nvidiaPemCertificates, parseRoots, verifyChain, type VerifiedChain } from './chain.js';
import { compareMeasurements } from './compare.js';
import type { Reason } from '../../base/reason.js';
import { diceTcbInfo, matchReportFwid, type DiceTcbInfo } from './fwid.js';
import { parseOpaqueData, type NvidiaOpaqueData } from './opaque.js';
import { verifyRim, type VerifiedRim } from './rim-signature.js';
import { verifyMeasurementSignature } from './signature.js';
import { frameSpdmReport, parseSpdmReport, NONCE_LENGTH, type MeasurementBlock, type SpdmFrame } from './spdm.js';

/** Stable names of the checks, in the order they run. */
export const GPU_CHECKS = ['report-format', 'device-chain', 'report-signature', 'nonce', 'report-fields', 'fwid'] as const;
export type GpuCheck = (typeof GPU_CHECKS)[number];

export interface GpuVerifyInput {
  /** GET_MEASUREMENTS request followed by the MEASUREMENTS response, as the device returned them. */
  report: Uint8Array;
  /** The device chain, leaf ("... FMC LF") first, PEM; the root may be included or not. */
  certChainPem: string | Uint8Array;
  /** The 32-byte nonce the request must carry (see nonce.ts). Required unless allowAnyNonce. */
  expectedNonce?: Uint8Array;
  /** Accept a report for any nonce: only for inspecting a report offline, never for appraisal. */
  allowAnyNonce?: boolean;
  /** Root certificates (PEM or DER) to trust instead of the pinned NVIDIA Device Identity CA. */
  roots?: readonly (string | Uint8Array)[];
  /** When the certificates must be valid; default now. */
  at?: Date;
  /** Told of each check as it passes or fails, for a caller that shows them all. */
  onCheck?: (check: GpuCheck, passed: boolean, detail: string) => void;
}

export interface VerifiedGpuReport {
  spdmVersion: string;
  /** The nonce of the request, which the signature covers. */
  nonceHex: string;
  /** Whether nonceHex was compared with an expected nonce. */
  nonceChecked: boolean;
  /**
   * Bytes the device sent after the signature (one on real H100 captures): unsigned, so
   * nothing in them is believed; non-zero is worth saying wherever the report is shown.
   */
  unsignedTrailingBytes: number;
  /** 0xFF when all measurements were requested. */
  measurementOperation: number;
  blocks: MeasurementBlock[];
  opaque: NvidiaOpaqueData;
  driverVersion?: string | undefined;
  vbiosVersion?: string | undefined;
  device: {
    /** Subject common names, leaf first, root last. */
    chain: string[];
    leafSerialHex: string;
    /** SHA-256 of the leaf's SubjectPublicKeyInfo: the device key that signed. */
    leafSpkiSha256: string;
    rootSpkiSha256: string;
    dice?: DiceTcbInfo | undefined;
  };
}

function chainDers(pem: string | Uint8Array): Buffer[] {
  return nvidiaPemCertificates(pem, 'GPU_CERT_CHAIN_INVALID');
}

function checkNonce(frame: SpdmFrame, expected: Uint8Array | undefined, allowAny: boolean): boolean {
  if (expected === undefined) {
    if (!allowAny) throw new AttestdError('INVALID_ARGUMENT', 'an expected nonce is required (allowAnyNonce skips the check)');
    return false;
  }
  if (expected.length !== NONCE_LENGTH) throw new AttestdError('INVALID_ARGUMENT', `the expected nonce is ${expected.length} bytes, not ${NONCE_LENGTH}`);
  // The nonce sits in the signed request, so a report for another nonce is a signature
  // made over other bytes than the ones this epoch asked to be signed.
  if (!frame.request.subarray(4, 4 + NONCE_LENGTH).equals(expected)) {
    throw new AttestdError('GPU_NONCE_MISMATCH', 'the report was signed for another nonce than the one expected');
  }
  return true;
}

/**
 * Verifies a GPU attestation report. The checks, in order; the first that fails throws:
 *  1. report-format: SPDM 1.1 GET_MEASUREMENTS request (37 bytes, signature requested) then
 *     MEASUREMENTS; the record, opaque data (<= 1024 bytes) and a 96-byte signature fill the
 *     response, but for at most MAX_TRAILING_BYTES unsigned bytes after the signature, which
 *     are counted (unsignedTrailingBytes) and never read; nothing inside the signed region is
 *     interpreted yet (GPU_REPORT_MALFORMED);
 *  2. device-chain: the PEM chain (leaf first) parses as ECDSA P-384 certificates signed
 *     with SHA-384, ends at the pinned NVIDIA Device Identity CA (or a root from `roots`),
 *     every link verifies, names chain, issuers are CAs within their path length, the leaf
 *     is not a CA and may sign, no unknown critical extension; a chain of only the root, or
 *     missing an intermediate or the leaf, fails (GPU_CERT_CHAIN_INVALID); every certificate
 *     is valid at `at` (COLLATERAL_STALE);
 *  3. report-signature: ECDSA P-384 / SHA-384 over request || response-without-signature
 *     verifies with the leaf key (GPU_REPORT_SIGNATURE_INVALID);
 *  4. nonce: the signed request carries `expectedNonce` (GPU_NONCE_MISMATCH),
 *     skipped only with allowAnyNonce;
 *  5. report-fields: measurement blocks (DMTF format, unique indices, counts and sizes
 *     consistent), the responder's slot, and NVIDIA's opaque fields (bounded TLVs, no
 *     repeats) decode (GPU_REPORT_MALFORMED);
 *  6. fwid: when the report states an FWID, the leaf's TCG DICE extension (2.23.133.5.4.1,
 *     or 2.23.133.5.4.1.1 on Blackwell) carries the same digest (GPU_CERT_CHAIN_INVALID).
 * Not checked here: revocation (NVIDIA's OCSP service is online-only), and the measurement
 * values themselves: see compareWithRims.
 */
export function verifyGpuAttestation(input: GpuVerifyInput): VerifiedGpuReport {
  const at = input.at ?? new Date();
  if (Number.isNaN(at.getTime())) throw new AttestdError('INVALID_ARGUMENT', 'verification time is not a valid date');
  const checks = new CheckRunner<GpuCheck>(input.onCheck);

  const frame = checks.must('report-format', () => frameSpdmReport(input.report), (f) => `SPDM 1.1, ${f.response.length}-byte response` +
    (f.unsignedTrailing.length > 0 ? `, then ${f.unsignedTrailing.length} unsigned byte(s) after the signature, not believed` : ''));
  const chain: VerifiedChain = checks.must('device-chain', () => verifyChain(chainDers(input.certChainPem), {
    code: 'GPU_CERT_CHAIN_INVALID',
    what: 'device',
    roots: input.roots ? parseRoots(input.roots, 'GPU_CERT_CHAIN_INVALID') : undefined,
    pin: NVIDIA_DEVICE_ROOT_SPKI_SHA256,
    at,
  }), (c) => c.certs.map(commonNameOf).join(' -> '));
  checks.must('report-signature', () => verifyMeasurementSignature(frame, chain.leaf.publicKey), () => 'ECDSA P-384 SHA-384 over request || response');
  const nonceChecked = checks.must('nonce', () => checkNonce(frame, input.expectedNonce, input.allowAnyNonce === true),
    (checked) => (checked ? 'matches the expected nonce' : 'not checked (allowAnyNonce)'));
  const { report, opaque } = checks.must('report-fields', () => {
    const r = parseSpdmReport(input.report);
    return { report: r, opaque: parseOpaqueData(r.opaqueData) };
  }, (v) => `${v.report.response.blocks.length} measurement blocks, ${v.opaque.fields.length} opaque fields`);
  const dice = checks.must('fwid', () => {
    const info = diceTcbInfo(chain.leaf);
    return { info, detail: matchReportFwid(opaque.fwidHex, info) };
  }, (v) => v.detail).info;

  return {
    spdmVersion: '1.1',
    nonceHex: report.request.nonceHex,
    nonceChecked,
    unsignedTrailingBytes: frame.unsignedTrailing.length,
    measurementOperation: report.request.measurementOperation,
    blocks: report.response.blocks,
    opaque,
    driverVersion: opaque.driverVersion,
    vbiosVersion: opaque.vbiosVersion,
    device: {
      chain: chain.certs.map(commonNameOf),
      leafSerialHex: chain.leaf.serialHex,
      leafSpkiSha256: spkiSha256(chain.leaf),
      rootSpkiSha256: chain.rootSpkiSha256,
      dice,
    },
  };
}

export interface RimInputs {
  /** The driver RIM (SWID tag XML) for the report's driver version. */
  driverRim?: string | Uint8Array;
  /** The VBIOS RIM for the report's VBIOS version. */
  vbiosRim?: string | Uint8Array;
  /** Root certificates to trust instead of the pinned NVIDIA CoRIM signing root. */
  rimRoots?: readonly (string | Uint8Array)[];
  /** When the RIM signing chains must be valid; default now. */
  at?: Date;
  /** Receives each RIM once verified, for a caller that shows or records them. */
  onRim?: (kind: 'driver' | 'vbios', rim: VerifiedRim) => void;
}

/**
 * Verifies the RIMs given (verifyRim: XML signature, signing chain to the NVIDIA CoRIM
 * root, validity at `at`; RIM_INVALID or COLLATERAL_STALE thrown) and compares the verified
 * report's measurements with them (compareMeasurements). Returns the reasons the
 * measurements do not match; empty when they do.
 */
export function compareWithRims(verified: VerifiedGpuReport, inputs: RimInputs): Reason[] {
  const at = inputs.at ?? new Date();
  if (Number.isNaN(at.getTime())) throw new AttestdError('INVALID_ARGUMENT', 'verification time is not a valid date');
  const roots = inputs.rimRoots ? parseRoots(inputs.rimRoots, 'RIM_INVALID') : undefined;
  const load = (kind: 'driver' | 'vbios', xml: string | Uint8Array | undefined): VerifiedRim | undefined => {
    if (xml === undefined) return undefined;
    const v = verifyRim(xml, { roots, at });
    inputs.onRim?.(kind, v);
    return v;
  };
  const driver = load('driver', inputs.driverRim);
  const vbios = load('vbios', inputs.vbiosRim);
  return compareMeasurements(verified, { driver: driver?.rim, vbios: vbios?.rim });
}
