import { describe, it, expect, vi, afterEach } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cvmVerifySnp } from '../../daemon/cli/cvm-verify-snp.js';
import { SNP_CHECKS } from '../../daemon/verify/snp/verify.js';
import { SNP_FIXTURES, snpFixture } from './snp-helpers.js';

const f = (name: string): string => join(SNP_FIXTURES, name);
const AT = '2025-06-01T00:00:00Z';

async function run(report: string | undefined, opts: { cert?: string; chain?: string; at?: string; json: boolean }): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => { out += String(s); return true; });
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => { err += String(s); return true; });
  try {
    const code = await cvmVerifySnp(report, opts);
    return { code, out, err };
  } finally {
    vi.restoreAllMocks();
  }
}

afterEach(() => vi.restoreAllMocks());

describe('attestctl cvm verify-snp', () => {
  it('verifies the trustee Milan report: fields, every check PASS, exit 0', async () => {
    const r = await run(f('trustee_milan_vcek_report.bin'), { cert: f('trustee_milan_vcek.der'), chain: f('amd_ask_ark_milan.pem'), at: AT, json: false });
    expect(r.code).toBe(0);
    expect(r.out).toContain('SEV-SNP report: Milan, signed by VCEK (Milan-B0)');
    expect(r.out).toMatch(/reported_tcb\s+0x7308000000000003 \(bootloader=3 tee=0 snp=8 microcode=115\)/);
    for (const check of SNP_CHECKS) expect(r.out).toMatch(new RegExp(`PASS\\s+${check}\\b`));
    expect(r.out.trimEnd().endsWith('verified')).toBe(true);
  });

  it('--json; the VLEK report with its ASVK chain, and a bundle that also holds the leaf', async () => {
    const vlek = await run(f('trustee_milan_vlek_report.bin'), { cert: f('trustee_milan_vlek.der'), chain: f('amd_asvk_ark_milan_vlek.pem'), at: AT, json: true });
    expect(vlek.code).toBe(0);
    const j = JSON.parse(vlek.out) as { verified: boolean; signingKey: string; report: { vmpl: number }; checks: { result: string }[] };
    expect(j).toMatchObject({ verified: true, signingKey: 'VLEK', report: { vmpl: 1 } });
    expect(j.checks.every((c) => c.result === 'pass')).toBe(true);

    const dir = mkdtempSync(join(tmpdir(), 'snp-cli-'));
    const hclReport = join(dir, 'report.bin');
    writeFileSync(hclReport, snpFixture('azure_snp_vtpm_hcl_report_milan.bin').subarray(0x20, 0x20 + 1184));
    const bundle = f('azure_snp_vtpm_vcek_chain_milan.pem');
    expect((await run(hclReport, { cert: bundle, chain: bundle, at: AT, json: false })).code).toBe(0);
  });

  it('a tampered report: exit 8, the failing check and the ones not run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'snp-cli-'));
    const bad = Buffer.from(snpFixture('trustee_milan_vcek_report.bin'));
    bad[42] = (bad[42] as number) + 1;
    writeFileSync(join(dir, 'bad.bin'), bad);
    const r = await run(join(dir, 'bad.bin'), { cert: f('trustee_milan_vcek.der'), chain: f('amd_ask_ark_milan.pem'), at: AT, json: false });
    expect(r.code).toBe(8);
    expect(r.out).toContain('NOT verified');
    expect(r.out).toMatch(/FAIL\s+report-signature/);
    expect(r.out).toMatch(/NOT RUN\s+reported-tcb/);
    expect(r.out).toContain('FAILED: SNP_SIGNATURE_INVALID');
  });

  it('without --at the expired VLEK fails with COLLATERAL_STALE', async () => {
    const r = await run(f('trustee_milan_vlek_report.bin'), { cert: f('trustee_milan_vlek.der'), chain: f('amd_asvk_ark_milan_vlek.pem'), json: true });
    expect(r.code).toBe(8);
    expect(JSON.parse(r.out)).toMatchObject({ verified: false, error: { code: 'COLLATERAL_STALE' } });
  });

  it('usage errors exit 2, unreadable inputs 1', async () => {
    expect((await run(undefined, { cert: 'x', chain: 'y', json: false })).code).toBe(2);
    expect((await run(f('trustee_milan_vcek_report.bin'), { chain: f('amd_ask_ark_milan.pem'), json: false })).code).toBe(2);
    expect((await run(f('trustee_milan_vcek_report.bin'), { cert: f('trustee_milan_vcek.der'), chain: f('amd_ask_ark_milan.pem'), at: 'yesterday', json: false })).code).toBe(2);
    const missing = await run(join(SNP_FIXTURES, 'no-such-report.bin'), { cert: f('trustee_milan_vcek.der'), chain: f('amd_ask_ark_milan.pem'), json: false });
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('cannot read the report');
    // A chain file without the ARK cannot be used.
    expect((await run(f('trustee_milan_vcek_report.bin'), { cert: f('trustee_milan_vcek.der'), chain: f('azure_snp_vtpm_vcek_genoa.pem'), json: false })).code).toBe(1);
  });
});
