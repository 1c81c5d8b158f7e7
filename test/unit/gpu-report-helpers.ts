// Shared by the gpu-report-*.test.ts files: the recorded NVIDIA evidence and RIMs in
// shared/fixtures/nvidia (provenance in shared/fixtures/SOURCES.md).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const NVIDIA = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures', 'nvidia');
export const ATTESTATION = join(NVIDIA, 'attestation');
export const RIMS = join(NVIDIA, 'rim');

export const attestationFixture = (name: string): Buffer => readFileSync(join(ATTESTATION, name));
export const rimFixture = (name: string): Buffer => readFileSync(join(RIMS, name));

/**
 * Inside the validity of every RIM signing chain (the "HCC RIM L4 Signer" certificates run
 * 2023-06/08 .. 2025-06/08). The device chains are valid until 9999.
 */
export const RIM_AT = new Date('2024-06-01T00:00:00Z');

export const RIM_FILES = [
  'nvtrust_1010_0200_882_96005E0001_PROD.swidtag.xml',
  'nvtrust_1010_0200_882_96005E0001_test_no_gpu.swidtag.xml',
  'nvtrust_Driver_RIM_test_no_gpu.swidtag.xml',
  'nvtrust_g520_0200_885_9600740001_PROD.swidtag.xml',
] as const;

export interface GpuSample {
  name: string;
  report: Buffer;
  chainPem: string;
  nonce: Buffer;
  /** Expected values, from SOURCES.md and the evidence JSON. */
  leaf: string;
  driverVersion?: string;
  vbiosVersion: string;
  blocks: number;
}

interface EvidenceJson {
  evidence: string;
  certificate: string;
  nonce: string;
  driver_version?: string;
  vbios_version?: string;
}

function fromJson(file: string, leaf: string, blocks: number, vbios?: string): GpuSample[] {
  const list = JSON.parse(attestationFixture(file).toString('utf8')) as EvidenceJson[];
  return list.map((e, i) => ({
    name: `${file}#${i}`,
    report: Buffer.from(e.evidence, 'base64'),
    chainPem: Buffer.from(e.certificate, 'base64').toString('utf8'),
    nonce: Buffer.from(e.nonce, 'hex'),
    leaf,
    ...(e.driver_version ? { driverVersion: e.driver_version } : {}),
    vbiosVersion: vbios ?? (e.vbios_version ?? '').toLowerCase(),
    blocks,
  }));
}

/** Every VALID report in the fixture set: 1 + 8 H100, 4 NVSwitch, 1 Blackwell. */
export function gpuSamples(): GpuSample[] {
  return [
    {
      name: 'nvtrust_h100_spdm_attestation_report',
      report: Buffer.from(attestationFixture('nvtrust_h100_spdm_attestation_report.hex.txt').toString('latin1').trim(), 'hex'),
      chainPem: attestationFixture('nvtrust_h100_device_cert_chain.pem').toString('utf8'),
      nonce: Buffer.from('931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb', 'hex'),
      leaf: 'GH100 A01 GSP FMC LF',
      driverVersion: '550.90.07',
      vbiosVersion: '96.00.9f.00.01',
      blocks: 64,
    },
    ...fromJson('nvtrust_ppcie_8x_h100_gpu_evidence.json', 'GH100 A01 GSP FMC LF', 64),
    ...fromJson('nvtrust_ppcie_4x_nvswitch_ls10_evidence.json', 'LS_10 A01 FSP FMC LF', 31, '96.10.73.00.01'),
    ...fromJson('veraison_blackwell_gpu_evidence.json', 'GB100 A01 GSP FMC LF', 64, '97.00.e4.00.11').map((s) => ({ ...s, driverVersion: '590.48.01' })),
  ];
}

export function h100(): GpuSample {
  const s = gpuSamples()[0];
  if (!s) throw new Error('no H100 sample');
  return s;
}

/** A copy with byte `at` XORed with `mask`. */
export function flipped(b: Uint8Array, at: number, mask = 0x01): Buffer {
  const c = Buffer.from(b);
  c[at] = (c[at] ?? 0) ^ mask;
  return c;
}
