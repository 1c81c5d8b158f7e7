// verifyGpuAttestation on every recorded NVIDIA report (SOURCES.md, nvidia rows), the three
// broken chains that ship with the fixtures, and reports tampered byte by byte.
import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import { AttestdError } from '../../daemon/base/errors.js';
import { NVIDIA_DEVICE_ROOT_SPKI_SHA256, nvidiaPemCertificates as pemCertificates, parseNvidiaCertificate as parseCertificate } from '../../daemon/verify/gpu-report/chain.js';
import { diceTcbInfo, matchReportFwid } from '../../daemon/verify/gpu-report/fwid.js';
import { gpuNonce } from '../../daemon/verify/gpu-report/nonce.js';
import { MAX_TRAILING_BYTES, REQUEST_LENGTH, SIGNATURE_LENGTH } from '../../daemon/verify/gpu-report/spdm.js';
import { GPU_CHECKS, verifyGpuAttestation, type GpuCheck, type GpuVerifyInput } from '../../daemon/verify/gpu-report/verify.js';
import { attestationFixture, flipped, gpuSamples, h100, rimFixture, RIM_AT, type GpuSample } from './gpu-report-helpers.js';

const inputFor = (s: GpuSample): GpuVerifyInput => ({ report: s.report, certChainPem: s.chainPem, expectedNonce: s.nonce, at: RIM_AT });

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof AttestdError) return err.code;
    throw err;
  }
  return 'PASSED';
}

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof AttestdError) return err.message;
    throw err;
  }
  return 'PASSED';
}

describe('verifyGpuAttestation: recorded reports', () => {
  const samples = gpuSamples();

  it('has all 14 VALID samples: 1 + 8 H100, 4 NVSwitch, 1 Blackwell', () => {
    expect(samples).toHaveLength(14);
  });

  it.each(samples.map((s) => [s.name, s] as const))('%s verifies, every check passing in order', (_name, s) => {
    const seen: [GpuCheck, boolean][] = [];
    const v = verifyGpuAttestation({ ...inputFor(s), onCheck: (c, ok) => seen.push([c, ok]) });
    expect(seen).toEqual(GPU_CHECKS.map((c) => [c, true]));
    expect(v.nonceChecked).toBe(true);
    expect(v.nonceHex).toBe(s.nonce.toString('hex'));
    expect(v.measurementOperation).toBe(0xff);
    expect(v.blocks).toHaveLength(s.blocks);
    expect(v.blocks.every((b) => b.valueHex.length === 96 && b.valueTypeName === 'mutable-firmware')).toBe(true);
    expect(v.device.chain[0]).toBe(s.leaf);
    expect(v.device.chain).toHaveLength(5);
    expect(v.device.chain[4]).toBe('NVIDIA Device Identity CA');
    expect(v.device.rootSpkiSha256).toBe(NVIDIA_DEVICE_ROOT_SPKI_SHA256);
    expect(v.driverVersion).toBe(s.driverVersion);
    expect(v.vbiosVersion).toBe(s.vbiosVersion);
    expect(v.device.dice?.fwids.length).toBeGreaterThan(0);
    if (v.opaque.fwidHex !== undefined) expect(v.device.dice?.fwids.map((f) => f.digestHex)).toContain(v.opaque.fwidHex);
  });

  it('H100 sample: the fields nvtrust documents, and the pinned root recomputed from the fixture', () => {
    const v = verifyGpuAttestation(inputFor(h100()));
    expect(v.opaque).toMatchObject({ project: '1010', projectSku: '0200', chipSku: '882', driverVersion: '550.90.07', vbiosVersion: '96.00.9f.00.01', protectedPcieStatus: 0x55 });
    expect(v.opaque.fwidHex).toBe('f5c384aebb579217a2c66b17ed0f28e6a9b8d639041acd7b4721cec004f7275494ba94bb5cdfdb3055ee051762b1f75d');
    expect(v.blocks.find((b) => b.index === 4)?.valueHex).toBe('73bbf35822549e28ba8fb2671fb7b58f46424a0069205b3ecf1d0fa762adef90b538cc9d692eb5c050147f2f1e8214ab');
    expect(v.device.dice?.oid).toBe('2.23.133.5.4.1');
    const root = pemCertificates(attestationFixture('nvidia_device_identity_root_ca.pem'), 'GPU_CERT_CHAIN_INVALID')[0];
    expect(createHash('sha256').update(parseCertificate(root ?? Buffer.alloc(0), 'GPU_CERT_CHAIN_INVALID').spki).digest('hex')).toBe(NVIDIA_DEVICE_ROOT_SPKI_SHA256);
  });

  it('Blackwell: the DiceTcbInfo extension (2.23.133.5.4.1.1) with two FWIDs; NVSwitch: no FWID in the report', () => {
    const all = gpuSamples();
    const bw = verifyGpuAttestation(inputFor(all[13] as GpuSample));
    expect(bw.device.dice).toMatchObject({ oid: '2.23.133.5.4.1.1', vendor: 'NVIDIA', model: 'GB100 A01 GSP' });
    expect(bw.device.dice?.fwids).toHaveLength(2);
    expect(bw.opaque.chipInfo).toBe('GB100');
    const sw = verifyGpuAttestation(inputFor(all[9] as GpuSample));
    expect(sw.opaque.fwidHex).toBeUndefined();
    expect(sw.driverVersion).toBeUndefined();
  });

  it('verifies with the default time and with the root given explicitly, inside or outside the chain', () => {
    const s = h100();
    expect(codeOf(() => verifyGpuAttestation({ report: s.report, certChainPem: s.chainPem, expectedNonce: s.nonce }))).toBe('PASSED');
    const rootPem = attestationFixture('nvidia_device_identity_root_ca.pem').toString('utf8');
    const withoutRoot = s.chainPem.slice(0, s.chainPem.lastIndexOf('-----BEGIN CERTIFICATE-----'));
    expect(codeOf(() => verifyGpuAttestation({ ...inputFor(s), roots: [rootPem] }))).toBe('PASSED');
    const v = verifyGpuAttestation({ ...inputFor(s), certChainPem: withoutRoot, roots: [rootPem] });
    expect(v.device.chain).toHaveLength(5);
    expect(messageOf(() => verifyGpuAttestation({ ...inputFor(s), certChainPem: withoutRoot }))).toMatch(/not issued by a trusted root/);
  });
});

describe('verifyGpuAttestation: broken chains', () => {
  const s = h100();
  const withChain = (file: string): GpuVerifyInput => ({ ...inputFor(s), certChainPem: attestationFixture(file).toString('utf8') });

  it('trustee_NEGATIVE_chain_missing_intermediate: the BROM names an issuer that is not next', () => {
    expect(codeOf(() => verifyGpuAttestation(withChain('trustee_NEGATIVE_chain_missing_intermediate.pem')))).toBe('GPU_CERT_CHAIN_INVALID');
    expect(messageOf(() => verifyGpuAttestation(withChain('trustee_NEGATIVE_chain_missing_intermediate.pem')))).toMatch(/"GH100 A01 GSP BROM" was not issued by the next certificate/);
  });

  it('trustee_NEGATIVE_chain_missing_leaf: the first certificate is the BROM, a CA', () => {
    expect(codeOf(() => verifyGpuAttestation(withChain('trustee_NEGATIVE_chain_missing_leaf.pem')))).toBe('GPU_CERT_CHAIN_INVALID');
    expect(messageOf(() => verifyGpuAttestation(withChain('trustee_NEGATIVE_chain_missing_leaf.pem')))).toMatch(/is a CA, not a signing certificate/);
  });

  it('trustee_NEGATIVE_chain_root_only: no signing certificate', () => {
    expect(codeOf(() => verifyGpuAttestation(withChain('trustee_NEGATIVE_chain_root_only.pem')))).toBe('GPU_CERT_CHAIN_INVALID');
    expect(messageOf(() => verifyGpuAttestation(withChain('trustee_NEGATIVE_chain_root_only.pem')))).toMatch(/only the root/);
  });

  it('another root, an empty chain, a chain not yet valid, a flipped certificate byte', () => {
    const rimRoot = rimFixture('nvidia_corim_signing_root_ca.pem').toString('utf8');
    expect(messageOf(() => verifyGpuAttestation({ ...inputFor(s), roots: [rimRoot] }))).toMatch(/not a trusted root/);
    expect(codeOf(() => verifyGpuAttestation({ ...inputFor(s), certChainPem: '' }))).toBe('GPU_CERT_CHAIN_INVALID');
    expect(codeOf(() => verifyGpuAttestation({ ...inputFor(s), at: new Date('2021-01-01T00:00:00Z') }))).toBe('COLLATERAL_STALE');
    const ders = pemCertificates(s.chainPem, 'GPU_CERT_CHAIN_INVALID');
    const leaf = ders[0] ?? Buffer.alloc(0);
    // Inside the leaf's TBS (its public key): the chain must fail, not the report.
    const bad = [flipped(leaf, 400), ...ders.slice(1)].map((d) => `-----BEGIN CERTIFICATE-----\n${d.toString('base64')}\n-----END CERTIFICATE-----\n`).join('');
    expect(codeOf(() => verifyGpuAttestation({ ...inputFor(s), certChainPem: bad }))).toBe('GPU_CERT_CHAIN_INVALID');
    // The signature BIT STRING closes the certificate; a non-zero unused-bits count would be a
    // second encoding of the same signature.
    let sigAt = leaf.length - 3;
    while (sigAt > 0 && !(leaf[sigAt] === 0x03 && leaf[sigAt + 1] === leaf.length - sigAt - 2)) sigAt--;
    expect(leaf[sigAt + 2]).toBe(0);
    const unused = [flipped(leaf, sigAt + 2), ...ders.slice(1)].map((d) => `-----BEGIN CERTIFICATE-----\n${d.toString('base64')}\n-----END CERTIFICATE-----\n`).join('');
    expect(messageOf(() => verifyGpuAttestation({ ...inputFor(s), certChainPem: unused }))).toMatch(/unused-bits/);
  });

  it('another device\'s valid chain: the report signature does not verify', () => {
    const other = gpuSamples()[2] as GpuSample;
    expect(codeOf(() => verifyGpuAttestation({ ...inputFor(s), certChainPem: other.chainPem }))).toBe('GPU_REPORT_SIGNATURE_INVALID');
  });
});

describe('verifyGpuAttestation: tampered reports', () => {
  const s = h100();
  const signedLength = s.report.length - SIGNATURE_LENGTH;

  it('a flipped bit anywhere in the signed region fails (signature, or framing where a length changed)', () => {
    const offsets = [0, 3, 4, 20, 36, REQUEST_LENGTH + 2, REQUEST_LENGTH + 4, REQUEST_LENGTH + 12, 500, 1500, 3000, signedLength - 430, signedLength - 200, signedLength - 1];
    for (const at of offsets) {
      const code = codeOf(() => verifyGpuAttestation({ ...inputFor(s), report: flipped(s.report, at) }));
      expect([`${at}:GPU_REPORT_SIGNATURE_INVALID`, `${at}:GPU_REPORT_MALFORMED`]).toContain(`${at}:${code}`);
    }
    // Inside a measurement value, an opaque field value and the responder nonce: only the signature can tell.
    for (const at of [REQUEST_LENGTH + 8 + 4 + 3, 1500, signedLength - 430, signedLength - 1]) {
      expect(codeOf(() => verifyGpuAttestation({ ...inputFor(s), report: flipped(s.report, at) }))).toBe('GPU_REPORT_SIGNATURE_INVALID');
    }
  });

  it('a flipped bit in the signature fails', () => {
    for (const at of [signedLength, signedLength + 47, s.report.length - 1]) {
      expect(codeOf(() => verifyGpuAttestation({ ...inputFor(s), report: flipped(s.report, at) }))).toBe('GPU_REPORT_SIGNATURE_INVALID');
    }
  });

  it('a flipped nonce byte fails even when the expected nonce is the flipped one', () => {
    const report = flipped(s.report, 4 + 7);
    const nonce = Buffer.from(report.subarray(4, 36));
    expect(codeOf(() => verifyGpuAttestation({ ...inputFor(s), report, expectedNonce: nonce }))).toBe('GPU_REPORT_SIGNATURE_INVALID');
  });

  it('an intact report for another nonce, or no nonce without allowAnyNonce', () => {
    expect(messageOf(() => verifyGpuAttestation({ ...inputFor(s), expectedNonce: flipped(s.nonce, 0) }))).toMatch(/another nonce/);
    expect(codeOf(() => verifyGpuAttestation({ ...inputFor(s), expectedNonce: undefined }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => verifyGpuAttestation({ ...inputFor(s), expectedNonce: Buffer.alloc(16) }))).toBe('INVALID_ARGUMENT');
    const v = verifyGpuAttestation({ ...inputFor(s), expectedNonce: undefined, allowAnyNonce: true });
    expect(v.nonceChecked).toBe(false);
  });

  it('truncated, extended past the unsigned tail allowed, or SPDM 1.2 reports are malformed', () => {
    expect(codeOf(() => verifyGpuAttestation({ ...inputFor(s), report: s.report.subarray(0, s.report.length - 1) }))).toBe('GPU_REPORT_MALFORMED');
    expect(codeOf(() => verifyGpuAttestation({ ...inputFor(s), report: Buffer.concat([s.report, Buffer.alloc(MAX_TRAILING_BYTES + 1)]) }))).toBe('GPU_REPORT_MALFORMED');
    const v12 = Buffer.from(s.report);
    v12[0] = 0x12;
    v12[REQUEST_LENGTH] = 0x12;
    expect(messageOf(() => verifyGpuAttestation({ ...inputFor(s), report: v12 }))).toMatch(/only SPDM 1.1/);
  });
});

describe('FWID and nonce derivation', () => {
  it('matchReportFwid: equal passes, different or missing in the leaf fails', () => {
    const leaf = parseCertificate(pemCertificates(h100().chainPem, 'GPU_CERT_CHAIN_INVALID')[0] ?? Buffer.alloc(0), 'GPU_CERT_CHAIN_INVALID');
    const dice = diceTcbInfo(leaf);
    const fwid = dice?.fwids[0]?.digestHex ?? '';
    expect(matchReportFwid(fwid, dice)).toMatch(/matches/);
    expect(codeOf(() => matchReportFwid('00'.repeat(48), dice))).toBe('GPU_CERT_CHAIN_INVALID');
    expect(codeOf(() => matchReportFwid(fwid, undefined))).toBe('GPU_CERT_CHAIN_INVALID');
    expect(matchReportFwid(undefined, dice)).toMatch(/no FWID/);
  });

  it('gpuNonce version 1 is SHA-256("attestd/gpu-nonce/v1" || binding), 32 bytes, and needs a 32-byte binding', () => {
    const binding = Buffer.alloc(32, 7);
    const uuid = 'GPU-11111111-2222-3333-4444-555555555555';
    const want = createHash('sha256').update('attestd/gpu-nonce/v1').update(binding).digest();
    expect(gpuNonce(binding, uuid, 1).equals(want)).toBe(true);
    expect(gpuNonce(binding, uuid, 1)).toHaveLength(32);
    expect(gpuNonce(Buffer.alloc(32, 8), uuid, 1).equals(want)).toBe(false);
    expect(codeOf(() => gpuNonce(Buffer.alloc(31), uuid))).toBe('INVALID_ARGUMENT');
  });
});
