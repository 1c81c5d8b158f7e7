/**
 * Ties a GPU report to the GPU it is filed under. The nonce does most of it (each GPU is
 * asked over a nonce derived from its own UUID, see nonce.ts); these checks cover what the
 * nonce cannot: one device key answering for two GPUs, and a report whose signed fields
 * describe another device than the one NVML lists under that UUID.
 *
 * What a report can be checked against: Hopper and Blackwell reports carry no UUID, and the
 * leaf's DICE extension carries only the firmware's FWID (checked in verify.ts), so the
 * identity the report states and NVML also reports is the VBIOS version (opaque field 6).
 */
import { AttestdError } from '../../base/errors.js';
import { spkiSha256 } from '../x509/certificate.js';
import { nvidiaPemCertificates, parseNvidiaCertificate } from './chain.js';
import type { VerifiedGpuReport } from './verify.js';

/** What NVML says about the GPU a report is filed under. */
export interface FiledUnder {
  uuid: string;
  /** As NVML prints it, e.g. "96.00.9F.00.01"; empty when NVML did not say. */
  vbiosVersion: string;
}

/**
 * SHA-256 of the SubjectPublicKeyInfo of a chain's first certificate, read without trusting
 * it; undefined when it does not parse (the verifier then refuses the chain on its own).
 */
export function leafKeyOf(certChainPem: string | Uint8Array): string | undefined {
  try {
    const [leaf] = nvidiaPemCertificates(certChainPem, 'GPU_CERT_CHAIN_INVALID');
    return leaf ? spkiSha256(parseNvidiaCertificate(leaf, 'GPU_CERT_CHAIN_INVALID')) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The UUIDs whose reports are signed by a device key another GPU's report also uses: one
 * physical device cannot be two GPUs, and which of them it really is cannot be told, so
 * every GPU sharing a key is named. `chains` maps UUID to the chain filed under it.
 */
export function sharedDeviceKeys(chains: ReadonlyMap<string, string | Uint8Array>): Map<string, string[]> {
  const byKey = new Map<string, string[]>();
  for (const [uuid, chain] of chains) {
    const key = leafKeyOf(chain);
    if (key !== undefined) byKey.set(key, [...(byKey.get(key) ?? []), uuid]);
  }
  const out = new Map<string, string[]>();
  for (const uuids of byKey.values()) {
    if (uuids.length < 2) continue;
    for (const u of uuids) out.set(u, uuids.filter((o) => o !== u));
  }
  return out;
}

/**
 * The report's own statements about the device must be those of the GPU it is filed under:
 * a VBIOS version in the signed opaque data must be the one NVML reports for that GPU
 * (compared case-insensitively: the report prints hex in lowercase, NVML in uppercase).
 * Throws GPU_REPORT_NOT_THIS_GPU.
 */
export function checkFiledUnder(v: VerifiedGpuReport, gpu: FiledUnder): void {
  const reported = v.vbiosVersion;
  if (reported === undefined || gpu.vbiosVersion === '') return;
  if (reported.toLowerCase() !== gpu.vbiosVersion.toLowerCase()) {
    throw new AttestdError('GPU_REPORT_NOT_THIS_GPU',
      `the report was signed by a device with VBIOS ${reported}; NVML lists ${gpu.uuid} with VBIOS ${gpu.vbiosVersion}`);
  }
}
