/** Shared fixtures for the TDX tests; provenance in ../shared/fixtures/SOURCES.md. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { CollateralFile } from '../../daemon/verify/tdx/collateral.js';

export const TDX_DIR = join(import.meta.dirname, '../../../shared/fixtures/tdx');
export const CCEL_DIR = join(import.meta.dirname, '../../../shared/fixtures/tcg-eventlog');

export const tdxFixture = (name: string): Buffer => readFileSync(join(TDX_DIR, name));

/** The TD quote inside the Azure TDX vTPM evidence (the same bytes in v0 and v1). */
export function azureTdQuote(): Buffer {
  const ev = JSON.parse(tdxFixture('azure_tdx_vtpm_evidence_v0.json').toString('utf8')) as { td_quote: number[] };
  return Buffer.from(ev.td_quote);
}

/** Every collateral file in the fixture folder: CRLs, TCB infos, QE identities, CA chains. */
export function allCollateral(): CollateralFile[] {
  return readdirSync(TDX_DIR)
    .filter((n) => /(\.pem|\.der|tcbinfo.*\.json|qe_identity.*\.json)$/.test(n))
    .map((name) => ({ name, bytes: tdxFixture(name) }));
}

/**
 * Verification times: within the validity of the collateral that exists for each quote.
 * SPR_E4 and trustee_50806f: 2023-06-20, when every piece of 2023 collateral was current.
 * trustee_00a06d08 and Azure: 2025-11-01, when the 2025 TCB info / QE identity were current
 * (the TCB signing certificate had expired on 2025-05-21, the CRLs are from 2023).
 * v5: 2026-02-03, the time go-tdx-guest pins.
 */
export const SAMPLES = [
  { name: 'gotdxguest_quote_v4_SPR_E4.dat', at: '2023-06-20T00:00:00Z', fmspc: '50806f000000' },
  { name: 'trustee_quote_v4_fmspc50806f.dat', at: '2023-06-20T00:00:00Z', fmspc: '50806f000000' },
  { name: 'trustee_quote_v4_fmspc00a06d08.dat', at: '2025-11-01T00:00:00Z', fmspc: '00a06d080000' },
  { name: 'gotdxguest_quote_v5_tdx15.dat', at: '2026-02-03T00:00:00Z', fmspc: '90c06f000000' },
  { name: 'azure', at: '2025-11-01T00:00:00Z', fmspc: '00806f050000' },
] as const;

export const sampleBytes = (name: string): Buffer => (name === 'azure' ? azureTdQuote() : tdxFixture(name));

export function withByte(buf: Buffer, offset: number, value: number): Buffer {
  const out = Buffer.from(buf);
  out[offset] = value;
  return out;
}
