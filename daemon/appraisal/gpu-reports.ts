/**
 * The GPUs' own attestation reports, appraised from what the record holds: for every GPU in
 * the measurement, its report over its own nonce (derived from the binding and its UUID),
 * signed by a device key of its own that chains to the trusted NVIDIA device root, stating
 * the device NVML lists under that UUID; and, when the policy names a RIM folder, its
 * measurements against the signed RIMs for its driver and VBIOS versions. Pure and
 * deterministic, shared with the offline verifier. Each reason names its GPU, so only that
 * GPU's leases go.
 *
 * Reason codes made here (stable): GPU_REPORT_MISSING, GPU_REPORT_DUPLICATE, the codes of
 * verifyGpuAttestation and checkFiledUnder, GPU_RIM_MISSING and those of compareMeasurements.
 */
import { asAttestdError } from '../base/errors.js';
import type { Reason } from '../base/reason.js';
import { parseRoots, type NvidiaCertificate } from '../verify/gpu-report/chain.js';
import { compareMeasurements } from '../verify/gpu-report/compare.js';
import { checkFiledUnder, sharedDeviceKeys } from '../verify/gpu-report/identity.js';
import { gpuNonce, type GpuNonceVersion } from '../verify/gpu-report/nonce.js';
import { rimKind, type Rim } from '../verify/gpu-report/rim.js';
import { verifyRim } from '../verify/gpu-report/rim-signature.js';
import { verifyGpuAttestation, type VerifiedGpuReport } from '../verify/gpu-report/verify.js';
import type { GpuDevice } from '../verify/gpu/measurement.js';
import type { GpuPolicy } from '../policy/types.js';

export interface RecordedGpuReport {
  uuid: string;
  report: Uint8Array;
  certChain: Uint8Array;
}

/** One RIM file as recorded. */
export interface RecordedRim {
  name: string;
  xml: Uint8Array;
}

/**
 * The roots the operator trusts for GPU evidence (PEM or DER certificates); each list
 * replaces the pinned NVIDIA root of its PKI when given. The daemon and the auditor each
 * bring their own: nothing in the record is trusted as a root.
 */
export interface GpuTrust {
  deviceRoots?: readonly Uint8Array[];
  rimRoots?: readonly Uint8Array[];
}

export interface GpuReportsInput {
  reports: readonly RecordedGpuReport[];
  binding: Uint8Array;
  nowMs: number;
  nonceVersion: GpuNonceVersion;
  trust?: GpuTrust;
  rims?: readonly RecordedRim[];
}

const reasonOf = (err: unknown): Reason => {
  const e = asAttestdError(err);
  return { code: e.code, message: e.message };
};

function sameUuid(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** Every recorded RIM that verifies now, with why the others did not; invalid roots fail them all. */
function verifiedRims(rims: readonly RecordedRim[], trust: GpuTrust | undefined, at: Date): { good: Rim[]; refused: string[] } {
  const good: Rim[] = [];
  const refused: string[] = [];
  let roots: NvidiaCertificate[] | undefined;
  try {
    roots = trust?.rimRoots ? parseRoots(trust.rimRoots, 'RIM_INVALID') : undefined;
  } catch (err) {
    return { good, refused: [`the RIM roots: ${reasonOf(err).message}`] };
  }
  for (const r of rims) {
    try {
      good.push(verifyRim(r.xml, { roots, at }).rim);
    } catch (err) {
      const e = reasonOf(err);
      refused.push(`${r.name.slice(0, 128)}: ${e.code}: ${e.message}`);
    }
  }
  return { good, refused };
}

/** The driver and VBIOS RIMs for the versions the report states (first by file order); what is missing. */
function rimsFor(v: VerifiedGpuReport, rims: readonly Rim[]): { driver?: Rim; vbios?: Rim; missing: string[] } {
  const find = (kind: 'driver' | 'vbios', version: string | undefined): Rim | undefined =>
    version === undefined ? undefined : rims.find((r) => rimKind(r) === kind && r.colloquialVersion.toLowerCase() === version.toLowerCase());
  const driver = find('driver', v.driverVersion);
  const vbios = find('vbios', v.vbiosVersion);
  const missing: string[] = [];
  if (!driver) missing.push(`driver ${v.driverVersion ?? '(the report states no version)'}`);
  if (!vbios) missing.push(`VBIOS ${v.vbiosVersion ?? '(the report states no version)'}`);
  return { driver, vbios, missing };
}

/** The measurements of one verified report against the RIMs (policy.rims set). */
function rimReasons(policy: NonNullable<GpuPolicy['rims']>, v: VerifiedGpuReport, rims: { good: Rim[]; refused: string[] }): Reason[] {
  const { driver, vbios, missing } = rimsFor(v, rims.good);
  const reasons: Reason[] = [];
  if (missing.length > 0 && policy.required) {
    const why = rims.refused.length > 0 ? `; refused: ${rims.refused.join('; ')}` : '';
    reasons.push({ code: 'GPU_RIM_MISSING', message: `no valid RIM for ${missing.join(' and ')}${why}` });
  }
  if (driver || vbios) reasons.push(...compareMeasurements(v, { driver, vbios }));
  return reasons;
}

/** One GPU's report: the nonce for its UUID, the trusted device chain, the device it names, the RIMs. */
function oneGpu(g: GpuDevice, r: RecordedGpuReport, policy: GpuPolicy, input: GpuReportsInput, rims: { good: Rim[]; refused: string[] }): Reason[] {
  let v: VerifiedGpuReport;
  try {
    const nonce = gpuNonce(input.binding, g.uuid, input.nonceVersion);
    v = verifyGpuAttestation({ report: r.report, certChainPem: r.certChain, expectedNonce: nonce, roots: input.trust?.deviceRoots,
      at: new Date(input.nowMs) });
    checkFiledUnder(v, g);
  } catch (err) {
    return [reasonOf(err)];
  }
  const reasons = policy.rims ? rimReasons(policy.rims, v, rims) : [];
  if (v.unsignedTrailingBytes > 0) {
    // Said wherever this GPU's verdict is shown; the bytes themselves were never read.
    return reasons.map((x) => ({ ...x, message: `${x.message} (the report carried ${v.unsignedTrailingBytes} unsigned byte(s) after its signature, ignored)` }));
  }
  return reasons;
}

/** Reasons over every GPU of the measurement; empty when each report verifies and matches. */
export function gpuReportReasons(policy: GpuPolicy, gpus: readonly GpuDevice[], input: GpuReportsInput): Reason[] {
  const reasons: Reason[] = [];
  const filed = new Map<string, RecordedGpuReport>();
  for (const g of gpus) {
    const r = input.reports.find((x) => sameUuid(x.uuid, g.uuid));
    if (r) filed.set(g.uuid, r);
  }
  const shared = sharedDeviceKeys(new Map([...filed].map(([uuid, r]) => [uuid, r.certChain])));
  const rims = policy.rims ? verifiedRims(input.rims ?? [], input.trust, new Date(input.nowMs)) : { good: [], refused: [] };
  for (const g of gpus) {
    const r = filed.get(g.uuid);
    const others = shared.get(g.uuid);
    const found: Reason[] = !r
      ? [{ code: 'GPU_REPORT_MISSING', message: 'gave no attestation report' }]
      : others
        ? [{ code: 'GPU_REPORT_DUPLICATE', message: `its report is signed by the same device key as the report of ${others.join(', ')}` }]
        : oneGpu(g, r, policy, input, rims);
    for (const x of found) reasons.push({ ...x, message: `GPU ${g.uuid}: ${x.message}`, gpu: g.uuid });
  }
  return reasons;
}
