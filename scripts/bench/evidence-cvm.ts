/**
 * 12. Confidential-VM report verification on recorded evidence (shared/fixtures, provenance
 * in SOURCES.md), at the times the unit tests pin:
 *  - SEV-SNP: verifySnpReport on the go-sev-guest Milan report with its VCEK and the AMD
 *    Milan ASK and ARK, at 2025-06-01;
 *  - TDX: verifyTdxQuote on the Trustee v4 quote (FMSPC 50806f) with every collateral file of
 *    the fixture folder, at 2023-06-20 (all checks pass, TCB UpToDate).
 * The baseline is the signature checks each verifier contains and nothing else: every
 * node:crypto verify() call one verification makes is recorded (through the builtin module's
 * exports, restored afterwards) and replayed with the same arguments, so the same key objects,
 * already imported. The difference is parsing, key import and the other checks.
 *
 * Both verifiers take DER bytes, as the daemon passes them every epoch; x509/ keeps each
 * certificate and CRL parsed (keys imported) by the SHA-256 of its DER, so a call after the
 * first pays for hashing, not parsing. The first call, with nothing cached, is measured apart.
 */
import { readdir, readFile } from 'node:fs/promises';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { parseAmdChain } from '../../daemon/verify/snp/chain.js';
import { verifySnpReport, type SnpVerifyInput } from '../../daemon/verify/snp/verify.js';
import { pickCollateral, type CollateralFile } from '../../daemon/verify/tdx/collateral.js';
import { pckChain } from '../../daemon/verify/tdx/intel-certificate.js';
import { parseTdxQuote } from '../../daemon/verify/tdx/quote.js';
import { verifyTdxQuote } from '../../daemon/verify/tdx/verify.js';
import { clearCertificateCache } from '../../daemon/verify/x509/certificate.js';
import { clearCrlCache } from '../../daemon/verify/x509/crl.js';
import { pemCertificates } from '../../daemon/verify/x509/pem.js';
import type { Benchmark, Figure, Outcome } from './report.js';
import { ROOT } from './processes.js';
import { fmt, msSince, nowNs, summarize } from './stats.js';

const FIXTURES = join(ROOT, '..', 'shared', 'fixtures');
const SNP_AT = new Date('2025-06-01T00:00:00Z');
const TDX_AT = new Date('2023-06-20T00:00:00Z');
const TDX_QUOTE = 'trustee_quote_v4_fmspc50806f.dat';
const TDX_FMSPC = Buffer.from('50806f000000', 'hex');
// The bounds a certificate library must keep to replace hand-written parsing (certificates
// parsed once and cached, so a warm call costs signature checks and a digest per certificate).
const SNP_TARGET_MS = 2;
const TDX_TARGET_MS = 5;
const WARMUP = 20;
const SAMPLES = 300;
const COLD_SAMPLES = 20;

type AnyFn = (...args: unknown[]) => unknown;
const cryptoExports = createRequire(import.meta.url)('node:crypto') as Record<string, AnyFn>;

interface Recording<T> {
  value: T;
  calls: { args: unknown[]; result: unknown }[];
  keyImports: number;
}

/** Runs `fn` once with node:crypto's verify and createPublicKey observed. */
function recordCrypto<T>(fn: () => T): Recording<T> {
  const verify = cryptoExports.verify!;
  const createPublicKey = cryptoExports.createPublicKey!;
  const calls: Recording<T>['calls'] = [];
  let keyImports = 0;
  cryptoExports.verify = (...args: unknown[]) => {
    const result = verify(...args);
    calls.push({ args, result });
    return result;
  };
  cryptoExports.createPublicKey = (...args: unknown[]) => {
    keyImports++;
    return createPublicKey(...args);
  };
  syncBuiltinESMExports();
  try {
    return { value: fn(), calls, keyImports };
  } finally {
    cryptoExports.verify = verify;
    cryptoExports.createPublicKey = createPublicKey;
    syncBuiltinESMExports();
  }
}

/** "3 x rsa-pss sha384, 1 x ec secp384r1 sha384" */
function describeCalls(calls: Recording<unknown>['calls']): string {
  const kinds = new Map<string, number>();
  for (const { args } of calls) {
    const k = args[2] as KeyObject | { key: KeyObject };
    const key = 'key' in k ? k.key : k;
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const name = `${key.asymmetricKeyType ?? '?'}${curve ? ` ${curve}` : ''} ${String(args[0])}`;
    kinds.set(name, (kinds.get(name) ?? 0) + 1);
  }
  return [...kinds].map(([k, n]) => `${n} x ${k}`).join(', ');
}

function replay(calls: Recording<unknown>['calls']): void {
  const verify = cryptoExports.verify!;
  for (const c of calls) if (verify(...c.args) !== c.result) throw new Error('a replayed signature check gave another result');
}

/** p50 and p99 of `fn` and of `base`, measured call by call, interleaved. */
function interleaved(fn: () => void, base: () => void): { a: ReturnType<typeof summarize>; b: ReturnType<typeof summarize> } {
  for (let i = 0; i < WARMUP; i++) {
    fn();
    base();
  }
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    let t = nowNs();
    fn();
    a.push(msSince(t));
    t = nowNs();
    base();
    b.push(msSince(t));
  }
  return { a: summarize(a), b: summarize(b) };
}

/** p50 of `fn` with every parsed certificate and CRL forgotten before each call. */
function coldOnly(fn: () => void): number {
  const s: number[] = [];
  for (let i = 0; i < COLD_SAMPLES; i++) {
    clearCertificateCache();
    clearCrlCache();
    const t = nowNs();
    fn();
    s.push(msSince(t));
  }
  return summarize(s).p50;
}

function timeOnly(fn: () => void): number {
  for (let i = 0; i < WARMUP; i++) fn();
  const s: number[] = [];
  for (let i = 0; i < SAMPLES / 3; i++) {
    const t = nowNs();
    fn();
    s.push(msSince(t));
  }
  return summarize(s).p50;
}

async function snpInput(): Promise<SnpVerifyInput> {
  const dir = join(FIXTURES, 'sev-snp');
  const [ask, ark] = pemCertificates(await readFile(join(dir, 'amd_ask_ark_milan.pem'), 'utf8'), 'SNP_CERT_CHAIN_INVALID');
  if (!ask || !ark) throw new Error('amd_ask_ark_milan.pem: expected the ASK and the ARK');
  return {
    report: await readFile(join(dir, 'gosevguest_milan_attestation.bin')),
    cert: await readFile(join(dir, 'gosevguest_milan_vcek.der')),
    chain: { ask, ark },
    at: SNP_AT,
  };
}

/** The collateral files of the TDX fixture folder: CA chains, CRLs, TCB infos, QE identities. */
async function tdxCollateral(dir: string): Promise<CollateralFile[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.pem') || n.endsWith('.der') ||
    (n.endsWith('.json') && (n.includes('tcbinfo') || n.includes('qe_identity')))).sort();
  return Promise.all(names.map(async (name) => ({ name, bytes: await readFile(join(dir, name)) })));
}

async function run(): Promise<Outcome> {
  const snp = await snpInput();
  // Recorded on a call with the certificates cached, as every epoch after the first runs.
  verifySnpReport(snp);
  const snpRec = recordCrypto(() => verifySnpReport(snp));
  const snpT = interleaved(() => verifySnpReport(snp), () => replay(snpRec.calls));
  const chain = 'ask' in snp.chain ? snp.chain : undefined;
  if (!chain) throw new Error('unreachable: the SNP sample is a VCEK');
  const snpParse = timeOnly(() => parseAmdChain('VCEK', snp.cert, chain.ask, chain.ark));

  const tdxDir = join(FIXTURES, 'tdx');
  const quote = await readFile(join(tdxDir, TDX_QUOTE));
  const files = await tdxCollateral(tdxDir);
  verifyTdxQuote(quote, files, { at: TDX_AT });
  const tdxRec = recordCrypto(() => verifyTdxQuote(quote, files, { at: TDX_AT }));
  if (tdxRec.value.tcb.status !== 'UpToDate') throw new Error(`TDX TCB status ${tdxRec.value.tcb.status}, expected UpToDate`);
  const tdxT = interleaved(() => verifyTdxQuote(quote, files, { at: TDX_AT }), () => replay(tdxRec.calls));
  const tdxCollateralParse = timeOnly(() => pickCollateral(files, TDX_FMSPC, TDX_AT));
  const tdxQuoteParse = timeOnly(() => {
    const q = parseTdxQuote(quote);
    pckChain(q.pckChainPem);
  });
  const snpCold = coldOnly(() => verifySnpReport(snp));
  const tdxCold = coldOnly(() => verifyTdxQuote(quote, files, { at: TDX_AT }));

  const row = (metric: string, value: number, baseline: number, target?: number): Figure => ({
    metric, unit: 'ms', value, baseline, better: 'lower', ...(target === undefined ? {} : { target: { text: `<= ${target} ms`, met: value <= target } }),
  });
  return {
    baseline: 'the node:crypto verify() calls the verifier makes, recorded and replayed with the same arguments and already-imported keys',
    figures: [
      row('SEV-SNP report + VCEK chain, p50', snpT.a.p50, snpT.b.p50, SNP_TARGET_MS),
      row('SEV-SNP report + VCEK chain, p99', snpT.a.p99, snpT.b.p99),
      row('TDX quote + collateral, p50', tdxT.a.p50, tdxT.b.p50, TDX_TARGET_MS),
      row('TDX quote + collateral, p99', tdxT.a.p99, tdxT.b.p99),
    ],
    notes: [
      `SNP signature checks: ${describeCalls(snpRec.calls)}; ${snpRec.keyImports} key imports per call; ` +
        `parsing the 3 certificates alone (parseAmdChain) ${fmt(snpParse)} ms`,
      `TDX signature checks: ${describeCalls(tdxRec.calls)}; ${tdxRec.keyImports} key imports per call; parsing alone: ` +
        `${files.length} collateral files (pickCollateral) ${fmt(tdxCollateralParse)} ms, quote + PCK chain ${fmt(tdxQuoteParse)} ms`,
      'certificates and CRLs are parsed once and kept by the SHA-256 of their DER; the first call, with nothing cached, ' +
        `takes ${fmt(snpCold)} ms (SNP) and ${fmt(tdxCold)} ms (TDX), p50 of ${COLD_SAMPLES}`,
      `${SAMPLES} interleaved calls each side after ${WARMUP} warm-up calls`,
    ],
    details: {
      snp: { verifyMs: snpT.a, baselineMs: snpT.b, checks: snpRec.calls.length, keyImports: snpRec.keyImports, parseChainMs: snpParse,
        coldVerifyMs: snpCold },
      tdx: { verifyMs: tdxT.a, baselineMs: tdxT.b, checks: tdxRec.calls.length, keyImports: tdxRec.keyImports,
        parseCollateralMs: tdxCollateralParse, parseQuoteMs: tdxQuoteParse, coldVerifyMs: tdxCold },
    },
  };
}

export const cvmBench: Benchmark = { id: 'cvm', title: '12. Confidential-VM report verification (SEV-SNP, TDX)', run };
