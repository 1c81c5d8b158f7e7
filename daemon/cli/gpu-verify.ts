/** attestctl gpu verify REPORT --chain CHAIN.pem: checks one NVIDIA GPU attestation report offline. */
import { readFile } from 'node:fs/promises';
import { AttestdError } from '../base/errors.js';
import type { Reason } from '../base/reason.js';
import { parseOpaqueData, type NvidiaOpaqueData } from '../verify/gpu-report/opaque.js';
import { parseRimXml, rimKind as kindOfRim } from '../verify/gpu-report/rim.js';
import type { VerifiedRim } from '../verify/gpu-report/rim-signature.js';
import { parseSpdmReport, type MeasurementBlock } from '../verify/gpu-report/spdm.js';
import { compareWithRims, GPU_CHECKS, verifyGpuAttestation, type GpuCheck, type VerifiedGpuReport } from '../verify/gpu-report/verify.js';
import { EXIT } from './exit-codes.js';

/** Same number as EXIT.AUDIT_FAILED: "the artifact does not verify". */
const VERIFY_FAILED = 8;

export const GPU_VERIFY_HELP = `Usage: attestctl gpu verify REPORT --chain CHAIN.pem [--nonce HEX] [--rim FILE ...] [--at TIME] [--json]

Verifies an NVIDIA GPU or NVSwitch attestation report offline. REPORT is the SPDM 1.1
GET_MEASUREMENTS request followed by the MEASUREMENTS response, as binary, hex or base64.
Checks: the device chain in CHAIN.pem (leaf first) reaches the pinned NVIDIA Device
Identity CA and is valid at TIME (ISO 8601, default now); the ECDSA P-384 signature over
request || response verifies with the leaf key; the request nonce is HEX (64 hex digits;
without --nonce the nonce is shown, not checked); the report's FWID is the leaf's.
Each --rim names a driver or VBIOS RIM (SWID tag XML; the kind is read from its version):
its XML signature and signing chain to the NVIDIA CoRIM signing root are checked at TIME,
and every measurement index it marks active must hold one of the values it allows.
Prints the report fields and each check with its result.
Exit codes: 0 every check passed, 8 a check failed, 2 usage, 1 an input could not be read.`;

interface CheckLine {
  check: string;
  result: 'pass' | 'fail' | 'not run';
  detail: string;
}

type RimKind = 'driver' | 'vbios';

interface GpuVerifyOptions {
  chain?: string;
  nonce?: string;
  rim?: string[];
  at?: string;
  json: boolean;
}

/** The RIMs given, by kind; the first one that does not parse is kept to fail the `rims` check. */
interface SortedRims {
  count: number;
  byKind: Partial<Record<RimKind, Buffer>>;
  error?: AttestdError;
}

/** What the checks found, for printing. */
interface Outcome {
  verified?: VerifiedGpuReport;
  failure?: AttestdError;
  reasons: Reason[];
  verifiedRims: { kind: RimKind; rim: VerifiedRim }[];
  lines: CheckLine[];
}

/** The report fields printed: verified ones, else as parsed for diagnosis, else none. */
type Shown = ReturnType<typeof unverifiedFields>;

const MAX_INPUT = 1024 * 1024;

async function readInput(path: string, what: string): Promise<Buffer | string> {
  try {
    const data = await readFile(path);
    return data.length > MAX_INPUT ? `the ${what} ${path} is over ${MAX_INPUT} bytes` : data;
  } catch (err) {
    return `cannot read the ${what} ${path}: ${(err as Error).message}`;
  }
}

/** Binary as is (it starts with the SPDM version byte); otherwise hex, then base64 text. */
function reportBytes(data: Buffer): Buffer {
  if (data.length > 0 && ((data[0] ?? 0) & 0xf0) === 0x10) return data;
  const text = data.toString('latin1').replace(/\s+/g, '');
  if (/^([0-9a-fA-F]{2})+$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(text) && text.length % 4 === 0) return Buffer.from(text, 'base64');
  return data;
}

function blockLine(b: MeasurementBlock): string {
  return `    ${String(b.index).padStart(3)}  ${b.valueTypeName.padEnd(17)} ${b.valueHex}\n`;
}

function fieldsText(blocks: readonly MeasurementBlock[], opaque: NvidiaOpaqueData | undefined, nonceHex: string, nonceNote: string): string {
  const rows: [string, string | number | undefined][] = [
    ['nonce', `${nonceHex} (${nonceNote})`],
    ['driver_version', opaque?.driverVersion],
    ['vbios_version', opaque?.vbiosVersion],
    ['project', opaque?.project],
    ['project_sku', opaque?.projectSku],
    ['chip_sku', opaque?.chipSku],
    ['chip_info', opaque?.chipInfo],
    ['board_id', opaque?.boardId],
    ['fwid', opaque?.fwidHex],
    ['protected_pcie', opaque?.protectedPcieStatus === undefined ? undefined : `0x${opaque.protectedPcieStatus.toString(16)}`],
  ];
  let text = rows.filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => `  ${k.padEnd(16)} ${String(v)}\n`).join('');
  text += `  measurements     ${blocks.length} blocks\n`;
  return text + blocks.map(blockLine).join('');
}

/** The fields as parsed when verification failed, for diagnosis only. */
function unverifiedFields(report: Buffer): { blocks: MeasurementBlock[]; opaque?: NvidiaOpaqueData; nonceHex: string } | undefined {
  try {
    const r = parseSpdmReport(report);
    let opaque: NvidiaOpaqueData | undefined;
    try {
      opaque = parseOpaqueData(r.opaqueData);
    } catch {
      opaque = undefined;
    }
    return { blocks: r.response.blocks, opaque, nonceHex: r.request.nonceHex };
  } catch {
    return undefined;
  }
}

function rimKind(xml: Buffer): RimKind | AttestdError {
  try {
    return kindOfRim(parseRimXml(xml));
  } catch (err) {
    if (err instanceof AttestdError) return err;
    throw err;
  }
}

/** Checks --nonce and --at; returns the time to verify at, or undefined once the usage error is printed. */
function verificationTime(opts: GpuVerifyOptions): Date | undefined {
  if (opts.nonce !== undefined && !/^[0-9a-fA-F]{64}$/.test(opts.nonce)) {
    process.stderr.write('attestctl: --nonce takes 64 hex digits (32 bytes)\n');
    return undefined;
  }
  const at = opts.at === undefined ? new Date() : new Date(opts.at);
  if (Number.isNaN(at.getTime())) {
    process.stderr.write(`attestctl: --at takes an ISO 8601 time, not "${opts.at}"\n`);
    return undefined;
  }
  return at;
}

/** Reads every input at once; on the first that cannot be read, prints why and returns undefined. */
async function readInputs(reportPath: string, chainPath: string, rimPaths: string[]): Promise<Buffer[] | undefined> {
  const inputs = await Promise.all([readInput(reportPath, 'report'), readInput(chainPath, 'chain'), ...rimPaths.map((p) => readInput(p, 'RIM'))]);
  for (const input of inputs) {
    if (typeof input === 'string') {
      process.stderr.write(`attestctl: ${input}\n`);
      return undefined;
    }
  }
  return inputs as Buffer[];
}

/** Sorts the RIMs by kind; two of one kind is a usage error, printed, and gives undefined. */
function sortRims(rimFiles: Buffer[], rimPaths: string[]): SortedRims | undefined {
  const sorted: SortedRims = { count: rimFiles.length, byKind: {} };
  for (const [i, xml] of rimFiles.entries()) {
    const kind = rimKind(xml);
    if (kind instanceof AttestdError) {
      sorted.error ??= new AttestdError(kind.code, `${rimPaths[i] ?? ''}: ${kind.message}`);
      continue;
    }
    if (sorted.byKind[kind]) {
      process.stderr.write(`attestctl: more than one ${kind} RIM given\n`);
      return undefined;
    }
    sorted.byKind[kind] = xml;
  }
  return sorted;
}

/** One line per check, in the verifier's order, filled in as it reports; two more with RIMs. */
function checkTable(withRims: boolean): { lines: CheckLine[]; record: (check: GpuCheck | string, passed: boolean, detail: string) => void } {
  const lines: CheckLine[] = GPU_CHECKS.map((check) => ({ check, result: 'not run', detail: '' }));
  if (withRims) lines.push({ check: 'rims', result: 'not run', detail: '' }, { check: 'measurements', result: 'not run', detail: '' });
  const record = (check: GpuCheck | string, passed: boolean, detail: string): void => {
    const line = lines.find((l) => l.check === check);
    if (line) Object.assign(line, { result: passed ? 'pass' : 'fail', detail });
  };
  return { lines, record };
}

/** The report's measurements against the RIMs; throws (after recording the `rims` line) when a RIM does not verify. */
function compareRims(verified: VerifiedGpuReport, rims: SortedRims, at: Date, record: ReturnType<typeof checkTable>['record'],
  verifiedRims: Outcome['verifiedRims']): Reason[] {
  if (rims.error) {
    record('rims', false, rims.error.message);
    throw rims.error;
  }
  if (rims.count === 0) return [];
  let reasons: Reason[];
  try {
    reasons = compareWithRims(verified, { driverRim: rims.byKind.driver, vbiosRim: rims.byKind.vbios, at, onRim: (kind, rim) => verifiedRims.push({ kind, rim }) });
  } catch (err) {
    record('rims', false, err instanceof Error ? err.message : String(err));
    throw err;
  }
  record('rims', true, verifiedRims.map((r) => `${r.kind} ${r.rim.rim.colloquialVersion} signed by ${r.rim.signer.commonName}`).join('; '));
  record('measurements', reasons.length === 0, reasons.length === 0 ? 'every active index matches' : `${reasons.length} reason(s) below`);
  return reasons;
}

/** Runs every check; a failed one ends the run with its error in `failure`. */
function runChecks(report: Buffer, chain: Buffer | string, rims: SortedRims, at: Date, nonce: string | undefined): Outcome {
  const { lines, record } = checkTable(rims.count > 0);
  const outcome: Outcome = { reasons: [], verifiedRims: [], lines };
  try {
    outcome.verified = verifyGpuAttestation({
      report, certChainPem: chain, at, onCheck: record,
      ...(nonce === undefined ? { allowAnyNonce: true } : { expectedNonce: Buffer.from(nonce, 'hex') }),
    });
    outcome.reasons = compareRims(outcome.verified, rims, at, record, outcome.verifiedRims);
  } catch (err) {
    if (!(err instanceof AttestdError)) throw err;
    outcome.failure = err;
  }
  return outcome;
}

function printJsonOutcome(o: Outcome, passed: boolean, shown: Shown): void {
  const out = {
    verified: passed,
    ...(o.verified ? { report: o.verified } : { unverifiedReport: shown }),
    rims: o.verifiedRims.map((r) => ({ kind: r.kind, colloquialVersion: r.rim.rim.colloquialVersion, tagId: r.rim.rim.tagId, signer: r.rim.signer, contentSha384: r.rim.contentSha384 })),
    reasons: o.reasons,
    ...(o.failure ? { error: { code: o.failure.code, message: o.failure.message } } : {}),
    checks: o.lines,
  };
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

function printTextOutcome(o: Outcome, passed: boolean, shown: Shown, nonce: string | undefined): void {
  let text = o.verified
    ? `NVIDIA attestation report from "${o.verified.device.chain[0] ?? ''}" (signature and chain verified):\n`
    : 'NVIDIA attestation report (NOT verified; fields shown as parsed):\n';
  const nonceNote = nonce === undefined ? 'not checked: no --nonce' : o.verified ? 'matches --nonce' : 'expected ' + nonce.toLowerCase();
  if (shown) text += fieldsText(shown.blocks, shown.opaque, shown.nonceHex, nonceNote);
  const trailing = o.verified?.unsignedTrailingBytes ?? 0;
  if (trailing > 0) text += `  unsigned_tail    ${trailing} byte(s) after the signature: not signed, ignored\n`;
  text += 'checks:\n';
  for (const l of o.lines) text += `  ${l.result.toUpperCase().padEnd(8)} ${l.check.padEnd(17)} ${l.detail}\n`;
  for (const r of o.reasons) text += `  ${r.code}: ${r.message}\n`;
  if (passed) text += 'verified\n';
  else if (o.failure) text += `FAILED: ${o.failure.code}: ${o.failure.message}\n`;
  else text += 'FAILED: the measurements do not match the RIMs\n';
  process.stdout.write(text);
}

export async function gpuVerify(reportPath: string | undefined, opts: GpuVerifyOptions): Promise<number> {
  if (!reportPath || !opts.chain) {
    process.stderr.write(`attestctl: gpu verify needs REPORT and --chain\n\n${GPU_VERIFY_HELP}\n`);
    return EXIT.USAGE;
  }
  const at = verificationTime(opts);
  if (!at) return EXIT.USAGE;
  const rimPaths = opts.rim ?? [];
  const inputs = await readInputs(reportPath, opts.chain, rimPaths);
  if (!inputs) return EXIT.FAILURE;
  const [reportFile, chainFile, ...rimFiles] = inputs;
  const report = reportBytes(reportFile ?? Buffer.alloc(0));
  const rims = sortRims(rimFiles, rimPaths);
  if (!rims) return EXIT.USAGE;

  const outcome = runChecks(report, chainFile ?? '', rims, at, opts.nonce);
  const passed = outcome.verified !== undefined && outcome.failure === undefined && outcome.reasons.length === 0;
  const v = outcome.verified;
  const shown: Shown = v ? { blocks: v.blocks, opaque: v.opaque, nonceHex: v.nonceHex } : unverifiedFields(report);
  if (opts.json) printJsonOutcome(outcome, passed, shown);
  else printTextOutcome(outcome, passed, shown, opts.nonce);
  return passed ? EXIT.OK : VERIFY_FAILED;
}
