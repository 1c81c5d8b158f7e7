/** attestctl cvm verify-tdx: verifies one Intel TDX quote offline against a folder of collateral. */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { appraiseTdxQuote, type TdxAppraisal } from '../verify/tdx/verify.js';
import type { CollateralFile } from '../verify/tdx/collateral.js';
import { MAX_QUOTE_SIZE } from '../verify/tdx/quote.js';
import { MAX_COLLATERAL_FILE_SIZE, MAX_COLLATERAL_FILES } from '../verify/tdx/collateral.js';
import { EXIT } from './exit-codes.js';
import { printJson } from './output.js';

/** A check failed or could not run: the same number as AUDIT_FAILED, "the artifact does not verify". */
const VERIFY_FAILED = 8;

export const CVM_VERIFY_TDX_HELP = `Usage: attestctl cvm verify-tdx QUOTE [--collateral DIR] [--at TIME] [--json]

Verifies an Intel TDX quote (v4 or v5): quote and QE report signatures, the PCK certificate
chain to the Intel SGX Root CA, and, from the files in DIR (PCK and root CRLs, TCB info,
QE identity, the Intel SGX TCB Signing certificate), revocation, collateral signatures and
freshness, FMSPC and TCB level. Files are recognised by content, not by name.
  --at TIME   verification time (ISO 8601); default now
Prints the parsed fields and each check. Exits 0 when every check passed, 8 when a check
failed or could not run for lack of collateral, 2 on bad usage, 1 when a file cannot be read.`;

export async function cvmVerifyTdx(quotePath: string | undefined, opts: { collateral?: string; at?: string; json: boolean }): Promise<number> {
  if (!quotePath) return usage('cvm verify-tdx needs a QUOTE file');
  const at = opts.at === undefined ? new Date() : new Date(opts.at);
  if (Number.isNaN(at.getTime()) || (opts.at !== undefined && !/^\d{4}-\d{2}-\d{2}/.test(opts.at))) return usage(`--at ${opts.at} is not an ISO 8601 time`);
  let quote: Buffer;
  let files: CollateralFile[];
  try {
    quote = await readBounded(quotePath, MAX_QUOTE_SIZE);
    files = opts.collateral === undefined ? [] : await readFolder(opts.collateral);
  } catch (err) {
    const message = (err as Error).message;
    if (opts.json) printJson({ error: 'FAILURE', message });
    else process.stderr.write(`attestctl: ${message}\n`);
    return EXIT.FAILURE;
  }
  const a = appraiseTdxQuote(quote, files, { at });
  const ok = a.checks.every((c) => c.status === 'pass');
  if (opts.json) printJson({ ok, at: at.toISOString(), fields: fields(a), checks: a.checks, ignored: a.collateral?.ignored ?? [] });
  else printText(a, at, ok);
  return ok ? EXIT.OK : VERIFY_FAILED;
}

function usage(message: string): number {
  process.stderr.write(`attestctl: ${message}\n\n${CVM_VERIFY_TDX_HELP}\n`);
  return EXIT.USAGE;
}

async function readBounded(path: string, max: number): Promise<Buffer> {
  const s = await stat(path);
  if (!s.isFile()) throw new Error(`${path} is not a file`);
  if (s.size > max) throw new Error(`${path} is ${s.size} bytes, more than ${max}`);
  return readFile(path);
}

async function readFolder(dir: string): Promise<CollateralFile[]> {
  const names = (await readdir(dir)).sort();
  if (names.length > MAX_COLLATERAL_FILES) throw new Error(`${dir} has more than ${MAX_COLLATERAL_FILES} files`);
  const out: CollateralFile[] = [];
  for (const name of names) {
    const path = join(dir, name);
    if (!(await stat(path)).isFile()) continue;
    out.push({ name, bytes: await readBounded(path, MAX_COLLATERAL_FILE_SIZE) });
  }
  return out;
}

function fields(a: TdxAppraisal): Record<string, unknown> {
  const q = a.quote;
  if (!q) return {};
  const b = q.body;
  const hex = (x: Buffer): string => x.toString('hex');
  return {
    version: q.header.version, body_type: b.bodyType, tee_tcb_svn: hex(b.teeTcbSvn), mr_seam: hex(b.mrSeam),
    mr_signer_seam: hex(b.mrSignerSeam), seam_attributes: hex(b.seamAttributes), td_attributes: hex(b.tdAttributes),
    debug: (b.tdAttributes[0]! & 1) === 1, xfam: hex(b.xfam), mr_td: hex(b.mrTd), mr_config_id: hex(b.mrConfigId),
    mr_owner: hex(b.mrOwner), mr_owner_config: hex(b.mrOwnerConfig),
    rtmr0: hex(b.rtmrs[0]), rtmr1: hex(b.rtmrs[1]), rtmr2: hex(b.rtmrs[2]), rtmr3: hex(b.rtmrs[3]), report_data: hex(b.reportData),
    ...(b.teeTcbSvn2 ? { tee_tcb_svn2: hex(b.teeTcbSvn2), mr_service_td: hex(b.mrServiceTd!) } : {}),
    qe_isv_svn: q.qeReport.isvSvn,
    ...(a.pck ? { fmspc: hex(a.pck.fmspc), pce_id: hex(a.pck.pceId), pce_svn: a.pck.pceSvn, cpu_svn: hex(a.pck.cpuSvn) } : {}),
    ...(a.tcb ? { tcb_status: a.tcb.status, tdx_module_status: a.tcb.moduleStatus } : {}),
    ...(a.qeTcbStatus ? { qe_tcb_status: a.qeTcbStatus } : {}),
  };
}

function printText(a: TdxAppraisal, at: Date, ok: boolean): void {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(fields(a))) if (v !== undefined) lines.push(`${k.padEnd(18)} ${String(v)}`);
  lines.push('', `checks at ${at.toISOString()}:`);
  for (const c of a.checks) lines.push(`  ${c.status.toUpperCase().padEnd(7)} ${c.name.padEnd(22)} ${c.code ? `${c.code}: ` : ''}${c.detail}`);
  for (const i of a.collateral?.ignored ?? []) lines.push(`  ignored ${i.name}: ${i.reason}`);
  lines.push('', ok ? 'TDX quote verified' : 'TDX quote NOT verified');
  process.stdout.write(lines.join('\n') + '\n');
}
