import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cvmVerifyTdx } from '../../daemon/cli/cvm-verify-tdx.js';
import { TDX_DIR } from './tdx-helpers.js';

let dir: string;
const quote = join(TDX_DIR, 'trustee_quote_v4_fmspc50806f.dat');

async function run(path: string | undefined, opts: { collateral?: string; at?: string; json: boolean }): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => { out += String(s); return true; });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => { err += String(s); return true; });
  try {
    return { code: await cvmVerifyTdx(path, opts), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tdx-collateral-'));
  // Renamed on purpose: collateral is recognised by content.
  const files: [string, string][] = [
    ['gotdxguest_pck_platform_crl.der', 'a.bin'], ['gotdxguest_intel_sgx_root_crl.der', 'b.bin'],
    ['gotdxguest_tcbinfo_fmspc50806f000000.json', 'c.json'], ['gotdxguest_qe_identity_td_qe.json', 'd.json'],
    ['intel_tcb_signing_chain.pem', 'e.pem'], ['gotdxguest_tcbinfo_fmspc90c06f000000.json', 'f.json'],
  ];
  for (const [from, to] of files) copyFileSync(join(TDX_DIR, from), join(dir, to));
  writeFileSync(join(dir, 'notes.txt'), 'not collateral');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('attestctl cvm verify-tdx', () => {
  it('exits 0 and prints every check as JSON when all pass', async () => {
    const r = await run(quote, { collateral: dir, at: '2023-06-20T00:00:00Z', json: true });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { ok: boolean; fields: Record<string, unknown>; checks: { name: string; status: string }[]; ignored: { name: string }[] };
    expect(j.ok).toBe(true);
    expect(j.fields).toMatchObject({ version: 4, fmspc: '50806f000000', tcb_status: 'UpToDate', debug: true });
    expect(j.checks.length).toBe(16);
    expect(j.ignored.map((i) => i.name).sort()).toEqual(['f.json', 'notes.txt']);
  });

  it('prints text and exits 8 when collateral is stale', async () => {
    const r = await run(quote, { collateral: dir, at: '2024-01-01T00:00:00Z', json: false });
    expect(r.code).toBe(8);
    expect(r.out).toMatch(/FAIL +crl\.pck +COLLATERAL_STALE/);
    expect(r.out).toMatch(/mr_td +705ee938/);
    expect(r.out).toMatch(/NOT verified/);
  });

  it('exits 8 when checks cannot run for lack of collateral', async () => {
    const r = await run(quote, { at: '2023-06-20T00:00:00Z', json: false });
    expect(r.code).toBe(8);
    expect(r.out).toMatch(/PASS +quote\.signature/);
    expect(r.out).toMatch(/SKIPPED +tcb_info\.signature/);
  });

  it('exits 8 for the SGX quote', async () => {
    const r = await run(join(TDX_DIR, 'trustee_sgx_quote_v3_occlum.dat'), { collateral: dir, at: '2023-06-20T00:00:00Z', json: true });
    expect(r.code).toBe(8);
    expect(r.out).toMatch(/CVM_REPORT_MALFORMED/);
  });

  it('exits 2 on usage errors and 1 on unreadable files', async () => {
    expect((await run(undefined, { json: false })).code).toBe(2);
    expect((await run(quote, { at: 'yesterday', json: false })).code).toBe(2);
    expect((await run(join(dir, 'missing.dat'), { json: false })).code).toBe(1);
    expect((await run(quote, { collateral: join(dir, 'missing'), json: false })).code).toBe(1);
  });
});
