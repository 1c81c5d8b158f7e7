import { describe, it, expect, vi, afterEach } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpuVerify, GPU_VERIFY_HELP } from '../../daemon/cli/gpu-verify.js';
import { GPU_CHECKS } from '../../daemon/verify/gpu-report/verify.js';
import { ATTESTATION, RIMS, flipped, gpuSamples, h100 } from './gpu-report-helpers.js';

type Opts = { chain?: string; nonce?: string; rim?: string[]; at?: string; json: boolean };

async function run(report: string | undefined, opts: Opts): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => { out += String(s); return true; });
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => { err += String(s); return true; });
  try {
    return { code: await gpuVerify(report, opts), out, err };
  } finally {
    vi.restoreAllMocks();
  }
}

afterEach(() => vi.restoreAllMocks());

const REPORT = join(ATTESTATION, 'nvtrust_h100_spdm_attestation_report.hex.txt');
const CHAIN = join(ATTESTATION, 'nvtrust_h100_device_cert_chain.pem');
const NONCE = h100().nonce.toString('hex');
const PROD = join(RIMS, 'nvtrust_1010_0200_882_96005E0001_PROD.swidtag.xml');
const DRIVER = join(RIMS, 'nvtrust_Driver_RIM_test_no_gpu.swidtag.xml');
const RIM_AT = '2024-06-01T00:00:00Z';

function tmp(name: string, data: string | Buffer): string {
  const path = join(mkdtempSync(join(tmpdir(), 'gpu-cli-')), name);
  writeFileSync(path, data);
  return path;
}

describe('attestctl gpu verify', () => {
  it('the H100 hex report with its chain and nonce: fields, every check PASS, exit 0', async () => {
    const r = await run(REPORT, { chain: CHAIN, nonce: NONCE, json: false });
    expect(r.code).toBe(0);
    expect(r.out).toContain('NVIDIA attestation report from "GH100 A01 GSP FMC LF" (signature and chain verified)');
    expect(r.out).toMatch(/driver_version\s+550\.90\.07/);
    expect(r.out).toMatch(/vbios_version\s+96\.00\.9f\.00\.01/);
    expect(r.out).toMatch(/measurements\s+64 blocks/);
    expect(r.out).toMatch(/\n\s+4 {2}mutable-firmware\s+73bbf358/);
    for (const check of GPU_CHECKS) expect(r.out).toMatch(new RegExp(`PASS\\s+${check}\\b`));
    expect(r.out.trimEnd().endsWith('verified')).toBe(true);
  });

  it('a report with one unsigned byte after its signature (as H100 captures carry): verified, the byte shown as unsigned', async () => {
    const path = tmp('report-tail.bin', Buffer.concat([h100().report, Buffer.from([0x00])]));
    const r = await run(path, { chain: CHAIN, nonce: NONCE, json: false });
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/unsigned_tail\s+1 byte\(s\) after the signature: not signed, ignored/);
    expect(r.out).toMatch(/PASS\s+report-format\s+.*1 unsigned byte\(s\) after the signature, not believed/);
    const j = JSON.parse((await run(path, { chain: CHAIN, nonce: NONCE, json: true })).out) as { report: { unsignedTrailingBytes: number } };
    expect(j.report.unsignedTrailingBytes).toBe(1);
    expect((await run(REPORT, { chain: CHAIN, nonce: NONCE, json: false })).out).not.toContain('unsigned_tail');
  });

  it('--json; binary and base64 reports; no --nonce shows the nonce as not checked', async () => {
    const j = await run(REPORT, { chain: CHAIN, nonce: NONCE, json: true });
    expect(j.code).toBe(0);
    const parsed = JSON.parse(j.out) as { verified: boolean; report: { driverVersion: string; nonceChecked: boolean }; checks: { result: string }[] };
    expect(parsed).toMatchObject({ verified: true, report: { driverVersion: '550.90.07', nonceChecked: true } });
    expect(parsed.checks.every((c) => c.result === 'pass')).toBe(true);

    const bin = tmp('report.bin', h100().report);
    const noNonce = await run(bin, { chain: CHAIN, json: false });
    expect(noNonce.code).toBe(0);
    expect(noNonce.out).toContain('not checked: no --nonce');

    const bw = gpuSamples()[13];
    if (!bw) throw new Error('no Blackwell sample');
    const b64 = tmp('bw.b64', bw.report.toString('base64'));
    const bwChain = tmp('bw.pem', bw.chainPem);
    expect((await run(b64, { chain: bwChain, nonce: bw.nonce.toString('hex'), json: false })).code).toBe(0);
  });

  it('a tampered report or another nonce: exit 8, the failing check and those not run', async () => {
    const bad = tmp('bad.bin', flipped(h100().report, 1500));
    const r = await run(bad, { chain: CHAIN, nonce: NONCE, json: false });
    expect(r.code).toBe(8);
    expect(r.out).toContain('NOT verified');
    expect(r.out).toMatch(/FAIL\s+report-signature/);
    expect(r.out).toMatch(/NOT RUN\s+fwid/);
    expect(r.out).toContain('FAILED: GPU_REPORT_SIGNATURE_INVALID');
    const other = await run(REPORT, { chain: CHAIN, nonce: '00'.repeat(32), json: false });
    expect(other.code).toBe(8);
    expect(other.out).toMatch(/FAIL\s+nonce\s+the report was signed for another nonce/);
  });

  it('a NEGATIVE chain: exit 8 with GPU_CERT_CHAIN_INVALID', async () => {
    const r = await run(REPORT, { chain: join(ATTESTATION, 'trustee_NEGATIVE_chain_missing_leaf.pem'), nonce: NONCE, json: true });
    expect(r.code).toBe(8);
    expect(JSON.parse(r.out)).toMatchObject({ verified: false, error: { code: 'GPU_CERT_CHAIN_INVALID' } });
  });

  it('--rim: both RIMs verify at --at, the measurements do not match (other versions): exit 8 with reasons', async () => {
    const r = await run(REPORT, { chain: CHAIN, nonce: NONCE, rim: [PROD, DRIVER], at: RIM_AT, json: false });
    expect(r.code).toBe(8);
    expect(r.out).toMatch(/PASS\s+rims\s+driver 545\.00 signed by HCC RIM L4 Signer; vbios 96\.00\.5E\.00\.01 signed by HCC RIM L4 Signer/);
    expect(r.out).toMatch(/FAIL\s+measurements/);
    expect(r.out).toContain('GPU_RIM_VERSION_MISMATCH: the VBIOS RIM is for version 96.00.5E.00.01, the report states 96.00.9f.00.01');
    expect(r.out).toContain('GPU_MEASUREMENT_MISMATCH: measurement index 1 (SPDM block 2)');
    const j = JSON.parse((await run(REPORT, { chain: CHAIN, nonce: NONCE, rim: [PROD], at: RIM_AT, json: true })).out) as { reasons: { index?: number }[]; rims: { kind: string }[] };
    expect(j.reasons.map((x) => x.index)).toEqual([undefined, 1, 2, 9, 11]);
    expect(j.rims).toEqual([expect.objectContaining({ kind: 'vbios', colloquialVersion: '96.00.5E.00.01' })]);
  });

  it('--rim at the current time: the RIM signer has expired, COLLATERAL_STALE; a broken RIM: RIM_INVALID', async () => {
    const stale = await run(REPORT, { chain: CHAIN, nonce: NONCE, rim: [PROD], json: false });
    expect(stale.code).toBe(8);
    expect(stale.out).toContain('FAILED: COLLATERAL_STALE');
    const broken = tmp('rim.xml', '<SoftwareIdentity');
    const r = await run(REPORT, { chain: CHAIN, nonce: NONCE, rim: [broken], at: RIM_AT, json: false });
    expect(r.code).toBe(8);
    expect(r.out).toMatch(/FAIL\s+rims/);
    expect(r.out).toContain('FAILED: RIM_INVALID');
  });

  it('usage errors exit 2; unreadable inputs exit 1', async () => {
    expect((await run(undefined, { chain: CHAIN, json: false })).code).toBe(2);
    const noChain = await run(REPORT, { json: false });
    expect(noChain.code).toBe(2);
    expect(noChain.err).toContain(GPU_VERIFY_HELP.split('\n')[0] ?? '');
    expect((await run(REPORT, { chain: CHAIN, nonce: 'xyz', json: false })).code).toBe(2);
    expect((await run(REPORT, { chain: CHAIN, at: 'yesterday', json: false })).code).toBe(2);
    expect((await run(REPORT, { chain: CHAIN, rim: [PROD, PROD], at: RIM_AT, json: false })).code).toBe(2);
    const missing = await run(join(ATTESTATION, 'no-such-report'), { chain: CHAIN, json: false });
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('cannot read the report');
    expect((await run(REPORT, { chain: CHAIN, rim: ['/nonexistent/rim.xml'], json: false })).code).toBe(1);
  });
});
