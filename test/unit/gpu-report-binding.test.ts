// GPU reports tied to the GPU they are filed under (per-GPU nonces, one device key per GPU,
// the device the report names), compared with signed RIMs, and the unsigned byte real H100
// captures carry after the signature. Reports and RIMs are signed by a test PKI made with
// openssl (test/helpers/gpu-pki.ts), judged under it as the operator's --gpu-roots.
import { describe, it, expect, beforeAll } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AttestdError } from '../../daemon/base/errors.js';
import { gpuReportReasons, type GpuReportsInput, type GpuTrust, type RecordedGpuReport } from '../../daemon/appraisal/gpu-reports.js';
import { decodeEvidence, encodeEvidence, RecordCarry, RecordMismatch } from '../../daemon/appraisal/epoch-record.js';
import { canonicalGpuUuid, gpuNonce, gpuNonceVersion } from '../../daemon/verify/gpu-report/nonce.js';
import { MAX_TRAILING_BYTES, REQUEST_LENGTH } from '../../daemon/verify/gpu-report/spdm.js';
import { verifyGpuAttestation } from '../../daemon/verify/gpu-report/verify.js';
import type { GpuDevice } from '../../daemon/verify/gpu/measurement.js';
import type { GpuPolicy } from '../../daemon/policy/types.js';
import { attestd } from '../../daemon/gen/proto.js';
import { buildSpdmReport, makeTestPki, rimXml, signRim, testDigest, type TestPki } from '../helpers/gpu-pki.js';
import { h100, RIM_AT } from './gpu-report-helpers.js';

const A = 'GPU-11111111-2222-3333-4444-555555555555';
const B = 'GPU-66666666-7777-8888-9999-aaaaaaaaaaaa';
const DRIVER = '550.90.07';
const VBIOS = '96.00.9F.00.01';
const BINDING = createHash('sha256').update('an epoch binding').digest();
const MEASUREMENTS = [testDigest('block 1'), testDigest('block 2'), testDigest('block 3')];

function device(uuid: string, index: number, vbiosVersion = VBIOS): GpuDevice {
  return { index, name: 'NVIDIA H100 80GB HBM3', uuid, serial: '', pciBusId: '', vbiosVersion, inforomImageVersion: '',
    eccModeCurrent: 'enabled', migModeCurrent: 'disabled', persistenceMode: 'enabled', ccMode: 'on' };
}

const POLICY: GpuPolicy = { required: true, ccMode: 'any', devTools: 'allowed', ecc: 'any', attestation: 'required' };

let devA: TestPki;
let devB: TestPki;
let rimPki: TestPki;
let trust: GpuTrust;
/** After the test certificates were made: they are valid from then on. */
let NOW = 0;

beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'attestd-gpu-binding-'));
  devA = makeTestPki(dir, 'device-a');
  devB = makeTestPki(dir, 'device-b');
  rimPki = makeTestPki(dir, 'rim');
  trust = { deviceRoots: [Buffer.from(devA.rootPem), Buffer.from(devB.rootPem)], rimRoots: [Buffer.from(rimPki.rootPem)] };
  NOW = Date.now() + 1000;
});

function reportFor(uuid: string, pki: TestPki, o: { measurements?: Buffer[]; vbios?: string; trailing?: number } = {}): RecordedGpuReport {
  const report = buildSpdmReport({ nonce: gpuNonce(BINDING, uuid), measurements: o.measurements ?? MEASUREMENTS, driverVersion: DRIVER,
    vbiosVersion: o.vbios ?? VBIOS, trailing: o.trailing }, pki.leafKey);
  return { uuid, report, certChain: Buffer.from(pki.chainPem) };
}

function input(reports: RecordedGpuReport[], more: Partial<GpuReportsInput> = {}): GpuReportsInput {
  return { reports, binding: BINDING, nowMs: NOW, nonceVersion: 2, trust, ...more };
}

const codes = (rs: { code: string; gpu?: string }[]) => rs.map((r) => `${r.gpu ?? ''}:${r.code}`);

describe('per-GPU nonces', () => {
  it('SHA-256("attestd/gpu-nonce/v2" || binding || canonical UUID); any case of a UUID is the same GPU; version 1 is the old one', () => {
    const want = createHash('sha256').update('attestd/gpu-nonce/v2').update(BINDING).update(A.toUpperCase().replace('GPU-', 'GPU-')).digest();
    expect(gpuNonce(BINDING, A).equals(createHash('sha256').update('attestd/gpu-nonce/v2').update(BINDING).update(`GPU-${A.slice(4).toLowerCase()}`).digest())).toBe(true);
    expect(gpuNonce(BINDING, A.toLowerCase()).equals(gpuNonce(BINDING, A))).toBe(true);
    expect(gpuNonce(BINDING, A).equals(gpuNonce(BINDING, B))).toBe(false);
    expect(want).toHaveLength(32);
    expect(gpuNonce(BINDING, A, 1).equals(createHash('sha256').update('attestd/gpu-nonce/v1').update(BINDING).digest())).toBe(true);
    expect(canonicalGpuUuid('gpu-ABCDEF01-2345-6789-abcd-ef0123456789')).toBe('GPU-abcdef01-2345-6789-abcd-ef0123456789');
    expect(() => gpuNonce(BINDING, 'GPU-not-a-uuid')).toThrow(AttestdError);
    expect(gpuNonceVersion(0)).toBe(1);
    expect(gpuNonceVersion(2)).toBe(2);
    expect(() => gpuNonceVersion(3)).toThrow(AttestdError);
  });
});

describe('a report stands for the one GPU it was made by', () => {
  it('each GPU with its own report, over its own nonce, under its own key: passes', () => {
    expect(gpuReportReasons(POLICY, [device(A, 0), device(B, 1)], input([reportFor(A, devA), reportFor(B, devB)]))).toEqual([]);
  });

  it('the same report and chain filed under two GPUs: both are named GPU_REPORT_DUPLICATE', () => {
    const a = reportFor(A, devA);
    const reasons = gpuReportReasons(POLICY, [device(A, 0), device(B, 1)], input([a, { ...a, uuid: B }]));
    expect(codes(reasons)).toEqual([`${A}:GPU_REPORT_DUPLICATE`, `${B}:GPU_REPORT_DUPLICATE`]);
    expect(reasons[1]?.message).toContain(A);
  });

  it("a report made over GPU A's nonce, filed under GPU B with B's own chain: GPU_NONCE_MISMATCH for B only", () => {
    const overA = buildSpdmReport({ nonce: gpuNonce(BINDING, A), measurements: MEASUREMENTS, driverVersion: DRIVER, vbiosVersion: VBIOS }, devB.leafKey);
    const reasons = gpuReportReasons(POLICY, [device(A, 0), device(B, 1)],
      input([reportFor(A, devA), { uuid: B, report: overA, certChain: Buffer.from(devB.chainPem) }]));
    expect(codes(reasons)).toEqual([`${B}:GPU_NONCE_MISMATCH`]);
  });

  it('a report stating another VBIOS than NVML lists for the GPU: GPU_REPORT_NOT_THIS_GPU', () => {
    const reasons = gpuReportReasons(POLICY, [device(A, 0)], input([reportFor(A, devA, { vbios: '96.00.74.00.01' })]));
    expect(codes(reasons)).toEqual([`${A}:GPU_REPORT_NOT_THIS_GPU`]);
  });

  it('a device chain under a root the operator did not give: GPU_CERT_CHAIN_INVALID; no report: GPU_REPORT_MISSING', () => {
    const onlyA = { ...trust, deviceRoots: [Buffer.from(devA.rootPem)] };
    expect(codes(gpuReportReasons(POLICY, [device(A, 0), device(B, 1)], input([reportFor(A, devA), reportFor(B, devB)], { trust: onlyA }))))
      .toEqual([`${B}:GPU_CERT_CHAIN_INVALID`]);
    expect(codes(gpuReportReasons(POLICY, [device(A, 0)], input([])))).toEqual([`${A}:GPU_REPORT_MISSING`]);
  });

  it('a log recorded before per-GPU nonces (version 0 = 1) re-appraises with the shared nonce', () => {
    const v1 = buildSpdmReport({ nonce: gpuNonce(BINDING, A, 1), measurements: MEASUREMENTS, driverVersion: DRIVER, vbiosVersion: VBIOS }, devA.leafKey);
    const rec = { uuid: A, report: v1, certChain: Buffer.from(devA.chainPem) };
    expect(gpuReportReasons(POLICY, [device(A, 0)], input([rec], { nonceVersion: gpuNonceVersion(0) }))).toEqual([]);
    expect(codes(gpuReportReasons(POLICY, [device(A, 0)], input([rec])))).toEqual([`${A}:GPU_NONCE_MISMATCH`]);
  });
});

describe('measurements against signed RIMs', () => {
  const RIMS = { ...POLICY, rims: { dir: '/etc/attestd/rims', required: true } };
  let signed: { name: string; xml: Buffer }[] | undefined;
  const rims = () => (signed ??= [
    { name: 'driver.xml', xml: Buffer.from(signRim(rimXml(DRIVER, [[0, MEASUREMENTS[0]!], [1, MEASUREMENTS[1]!]]), rimPki)) },
    { name: 'vbios.xml', xml: Buffer.from(signRim(rimXml(VBIOS, [[2, MEASUREMENTS[2]!]]), rimPki)) },
  ]);

  it('every active index holds an allowed value: passes', () => {
    expect(gpuReportReasons(RIMS, [device(A, 0)], input([reportFor(A, devA)], { rims: rims() }))).toEqual([]);
  });

  it('a changed measurement fails with GPU_MEASUREMENT_MISMATCH naming its index', () => {
    const drifted = [MEASUREMENTS[0]!, testDigest('something else'), MEASUREMENTS[2]!];
    const reasons = gpuReportReasons(RIMS, [device(A, 0)], input([reportFor(A, devA, { measurements: drifted })], { rims: rims() }));
    expect(reasons).toEqual([expect.objectContaining({ code: 'GPU_MEASUREMENT_MISMATCH', index: 1, gpu: A })]);
    expect(reasons[0]?.message).toMatch(/measurement index 1 \(SPDM block 2\)/);
  });

  it('no RIM for the VBIOS, or RIMs signed under a root not trusted, while required: GPU_RIM_MISSING', () => {
    const driverOnly = rims().slice(0, 1);
    expect(codes(gpuReportReasons(RIMS, [device(A, 0)], input([reportFor(A, devA)], { rims: driverOnly })))).toEqual([`${A}:GPU_RIM_MISSING`]);
    const untrusted = gpuReportReasons(RIMS, [device(A, 0)], input([reportFor(A, devA)], { rims: rims(), trust: { deviceRoots: trust.deviceRoots } }));
    expect(codes(untrusted)).toEqual([`${A}:GPU_RIM_MISSING`]);
    expect(untrusted[0]?.message).toMatch(/refused: driver\.xml: RIM_INVALID/);
    // Not required: compared with what there is, nothing missing is held against the GPU.
    expect(gpuReportReasons({ ...RIMS, rims: { dir: '/x', required: false } }, [device(A, 0)], input([reportFor(A, devA)], { rims: driverOnly }))).toEqual([]);
  });

  it('a tampered RIM does not verify and is not used', () => {
    const [driver, vbios] = rims();
    const tampered = Buffer.from(driver!.xml.toString('utf8').replace(MEASUREMENTS[1]!.toString('hex'), testDigest('x').toString('hex')));
    expect(codes(gpuReportReasons(RIMS, [device(A, 0)], input([reportFor(A, devA)], { rims: [{ name: 'driver.xml', xml: tampered }, vbios!] }))))
      .toEqual([`${A}:GPU_RIM_MISSING`]);
  });

  it('RIM bytes are recorded once per session, then named by digest and taken from the carry', () => {
    const collected = { gpu: { measurement: Buffer.from('m'), reports: [], reportNonceVersion: 2, rims: rims() } };
    const daemon = new RecordCarry();
    const auditor = new RecordCarry();
    const V1 = attestd.audit.v1;
    const roundTrip = (carry: RecordCarry, fields: ReturnType<typeof encodeEvidence>) => {
      const gpuMeasurementSha256 = createHash('sha256').update('m').digest();
      return decodeEvidence(V1.EpochResult.decode(V1.EpochResult.encode({ ...fields, epoch: 1, gpuMeasurementSha256 }).finish()), carry, []);
    };
    const first = encodeEvidence(collected, daemon);
    expect(first.gpu?.rims?.every((r) => (r.xml?.length ?? 0) > 0)).toBe(true);
    roundTrip(daemon, first);
    const second = encodeEvidence(collected, daemon);
    expect(second.gpu?.rims?.every((r) => r.xml === null)).toBe(true);
    expect(roundTrip(auditor, first).gpu?.rims?.map((r) => r.name)).toEqual(['driver.xml', 'vbios.xml']);
    expect(roundTrip(auditor, second).gpu?.rims?.[1]?.xml).toEqual(rims()[1]!.xml);
    expect(roundTrip(daemon, second).gpu?.reportNonceVersion).toBe(2);
    // A reader that never saw the bytes cannot take them on trust.
    expect(() => roundTrip(new RecordCarry(), second)).toThrow(RecordMismatch);
  });
});

describe('unsigned bytes after the signature', () => {
  const s = h100();
  const at = { certChainPem: s.chainPem, expectedNonce: s.nonce, at: RIM_AT };

  it('the real H100 report with one byte appended (as Confidential Containers captures carry) verifies, the byte counted', () => {
    const v = verifyGpuAttestation({ ...at, report: Buffer.concat([s.report, Buffer.from([0x00])]) });
    expect(v.unsignedTrailingBytes).toBe(1);
    expect(verifyGpuAttestation({ ...at, report: s.report }).unsignedTrailingBytes).toBe(0);
    const seen: string[] = [];
    verifyGpuAttestation({ ...at, report: Buffer.concat([s.report, Buffer.from([0xff])]), onCheck: (c, ok, d) => seen.push(`${c}:${ok}:${d}`) });
    expect(seen[0]).toMatch(/^report-format:true:.*1 unsigned byte\(s\) after the signature, not believed/);
  });

  it('still refused: a truncated report, a length field that no longer fits, more than MAX_TRAILING_BYTES after the signature', () => {
    const code = (report: Buffer): string => {
      try {
        verifyGpuAttestation({ ...at, report });
        return 'PASSED';
      } catch (err) {
        return (err as AttestdError).code;
      }
    };
    expect(code(s.report.subarray(0, s.report.length - 1))).toBe('GPU_REPORT_MALFORMED');
    expect(code(Buffer.concat([s.report, Buffer.alloc(MAX_TRAILING_BYTES + 1)]))).toBe('GPU_REPORT_MALFORMED');
    // MeasurementRecordLength one larger: the fields now run past the signature.
    const longer = Buffer.from(s.report);
    longer.writeUIntLE(longer.readUIntLE(REQUEST_LENGTH + 5, 3) + 1, REQUEST_LENGTH + 5, 3);
    expect(code(longer)).toBe('GPU_REPORT_MALFORMED');
    // One smaller: the signature would start a byte early and one byte trail; the signature says no.
    const shorter = Buffer.from(s.report);
    shorter.writeUIntLE(shorter.readUIntLE(REQUEST_LENGTH + 5, 3) - 1, REQUEST_LENGTH + 5, 3);
    expect(code(shorter)).not.toBe('PASSED');
  });

  it('a test-PKI report with a trailing byte: appraised on its signed part, the count said in a failing reason', () => {
    const rec = reportFor(A, devA, { trailing: 1, vbios: VBIOS });
    expect(gpuReportReasons(POLICY, [device(A, 0)], input([rec]))).toEqual([]);
    const RIMS = { ...POLICY, rims: { dir: '/x', required: true } };
    const [reason] = gpuReportReasons(RIMS, [device(A, 0)], input([rec], { rims: [] }));
    expect(reason?.message).toMatch(/1 unsigned byte\(s\) after its signature, ignored/);
  });
});
