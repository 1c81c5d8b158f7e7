// Shared by the snp-*.test.ts files: the recorded SEV-SNP artifacts in shared/fixtures/sev-snp
// (provenance in shared/fixtures/SOURCES.md) and the inputs verifySnpReport takes for them.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pemCertificates as pemBlocks } from '../../daemon/verify/x509/pem.js';
import type { SnpVerifyInput } from '../../daemon/verify/snp/verify.js';

export const SNP_FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures', 'sev-snp');

export function snpFixture(name: string): Buffer {
  return readFileSync(join(SNP_FIXTURES, name));
}

export function pemFixture(name: string): Uint8Array[] {
  return pemBlocks(snpFixture(name).toString('utf8'), 'SNP_CERT_CHAIN_INVALID');
}

/** [ASK or ASVK, ARK] from one of the AMD KDS cert_chain files. */
export function amdChain(name: string): { mid: Uint8Array; ark: Uint8Array } {
  const [mid, ark] = pemFixture(name);
  if (!mid || !ark) throw new Error(`${name}: expected two certificates`);
  return { mid, ark };
}

/** The HCL report of an Azure SNP vTPM carries the SNP report at 0x20 (SOURCES.md). */
export const HCL_SNP_OFFSET = 0x20;
export const SNP_REPORT_BYTES = 1184;

export function snpFromHcl(hcl: Uint8Array): Buffer {
  return Buffer.from(hcl.subarray(HCL_SNP_OFFSET, HCL_SNP_OFFSET + SNP_REPORT_BYTES));
}

/** Time pinned inside every certificate's validity (the Milan VLEK expired 2025-12-10). */
export const PINNED_AT = new Date('2025-06-01T00:00:00Z');

export interface Sample {
  name: string;
  report: Buffer;
  cert: Uint8Array;
  chainFile: string;
  vlek?: boolean;
}

function azureEvidence(file: string): Sample {
  const j = JSON.parse(snpFixture(file).toString('utf8')) as { report?: number[]; hcl_report?: string; vcek: string };
  const hcl = j.report ? Buffer.from(j.report) : Buffer.from(j.hcl_report ?? '', 'base64url');
  const cert = j.vcek.includes('BEGIN CERTIFICATE') ? pemBlocks(j.vcek, 'SNP_CERT_CHAIN_INVALID')[0] : new Uint8Array(Buffer.from(j.vcek, 'base64'));
  if (!cert) throw new Error(`${file}: no VCEK`);
  return { name: file, report: snpFromHcl(hcl), cert, chainFile: 'amd_ask_ark_milan.pem' };
}

/** Every recorded report with the certificate that signed it; all VALID per SOURCES.md. */
export function validSamples(): Sample[] {
  const azureVcek = pemFixture('azure_snp_vtpm_vcek_chain_milan.pem')[0];
  if (!azureVcek) throw new Error('azure VCEK missing');
  return [
    { name: 'gosevguest milan v2', report: snpFixture('gosevguest_milan_attestation.bin'), cert: snpFixture('gosevguest_milan_vcek.der'), chainFile: 'amd_ask_ark_milan.pem' },
    { name: 'trustee milan vcek v2', report: snpFixture('trustee_milan_vcek_report.bin'), cert: snpFixture('trustee_milan_vcek.der'), chainFile: 'amd_ask_ark_milan.pem' },
    { name: 'trustee milan vlek v3', report: snpFixture('trustee_milan_vlek_report.bin'), cert: snpFixture('trustee_milan_vlek.der'), chainFile: 'amd_asvk_ark_milan_vlek.pem', vlek: true },
    { name: 'azure hcl report', report: snpFromHcl(snpFixture('azure_snp_vtpm_hcl_report_milan.bin')), cert: azureVcek, chainFile: 'amd_ask_ark_milan.pem' },
    azureEvidence('azure_snp_vtpm_evidence_v0_milan.json'),
    azureEvidence('azure_snp_vtpm_evidence_v1_milan.json'),
    azureEvidence('azure_snp_vtpm_evidence_v2_milan.json'),
  ];
}

export function inputFor(s: Sample, at: Date = PINNED_AT): SnpVerifyInput {
  const { mid, ark } = amdChain(s.chainFile);
  return { report: s.report, cert: s.cert, chain: s.vlek ? { asvk: mid, ark } : { ask: mid, ark }, at };
}
