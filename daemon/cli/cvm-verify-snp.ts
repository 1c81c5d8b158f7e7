/** attestctl cvm verify-snp REPORT --cert CERT --chain CHAIN.pem: checks one SEV-SNP report offline. */
import { readFile } from 'node:fs/promises';
import { AttestdError } from '../base/errors.js';
import { parseAmdCertificate } from '../verify/snp/chain.js';
import type { Certificate } from '../verify/x509/certificate.js';
import { pemCertificates } from '../verify/x509/pem.js';
import { parseSnpReport } from '../verify/snp/report.js';
import type { SnpReport, TcbVersion } from '../verify/snp/types.js';
import { SNP_CHECKS, verifySnpReport, type SnpChain, type SnpCheck, type VerifiedSnpReport } from '../verify/snp/verify.js';
import { EXIT } from './exit-codes.js';

/** Same number as EXIT.AUDIT_FAILED: "the artifact does not verify". */
const VERIFY_FAILED = 8;

export const CVM_VERIFY_SNP_HELP = `Usage: attestctl cvm verify-snp REPORT --cert CERT --chain CHAIN.pem [--at TIME] [--json]

Verifies a SEV-SNP attestation report (the 1184-byte binary) offline: the VCEK or VLEK
certificate CERT (PEM or DER) chains through the ASK or ASVK to a pinned AMD root (ARK) in
CHAIN.pem (AMD KDS cert_chain), all valid at TIME (ISO 8601, default now); the report
signature verifies with the certificate's key; the report's TCB, chip id and CPU match the
certificate. Prints the report fields and each check with its result.
Exit codes: 0 every check passed, 8 a check failed, 2 usage, 1 an input could not be read.`;

interface CheckLine {
  check: SnpCheck;
  result: 'pass' | 'fail' | 'not run';
  detail: string;
}

function isPem(bytes: Buffer): boolean {
  return bytes.subarray(0, 64 * 1024).toString('latin1').includes('-----BEGIN CERTIFICATE-----');
}

function tryParse(der: Uint8Array): Certificate | undefined {
  try {
    return parseAmdCertificate(der);
  } catch {
    return undefined;
  }
}

/**
 * The ARK is the self-issued certificate; the intermediate is the other one (a bundle that
 * also holds the leaf, as cloud providers serve it, is accepted). A VLEK's intermediate is
 * the ASVK. Anything unparsable is passed on for the verifier to reject.
 */
function pickChain(certs: Uint8Array[], leaf: Uint8Array): SnpChain | string {
  const others = certs.filter((c) => !Buffer.from(c).equals(leaf));
  const parsed = others.map((der) => ({ der, cert: tryParse(der) }));
  const ark = parsed.find((p) => p.cert && Buffer.from(p.cert.subject).equals(p.cert.issuer));
  const mid = parsed.find((p) => p !== ark);
  if (!ark || !mid || parsed.length !== 2) return 'the chain file must hold the ASK (or ASVK) and the ARK';
  const leafCert = tryParse(leaf);
  const vlek = leafCert?.commonName === 'SEV-VLEK' || mid.cert?.commonName?.startsWith('SEV-VLEK-') === true;
  return vlek ? { asvk: mid.der, ark: ark.der } : { ask: mid.der, ark: ark.der };
}

function tcbText(t: TcbVersion): string {
  const fmc = t.fmc === undefined ? '' : ` fmc=${t.fmc}`;
  return `0x${t.raw} (bootloader=${t.bootloader} tee=${t.tee} snp=${t.snp} microcode=${t.microcode}${fmc})`;
}

function reportText(r: SnpReport): string {
  const p = r.policy;
  const flags = (['smt', 'migrateMa', 'debug', 'singleSocket', 'cxl', 'memAes256Xts', 'raplDisable', 'ciphertextHiding', 'pageSwapDisable'] as const)
    .filter((f) => p[f]).join(' ') || 'none';
  const rows: [string, string][] = [
    ['version', String(r.version)],
    ['guest_svn', String(r.guestSvn)],
    ['policy', `0x${p.raw} (abi ${p.abiMajor}.${p.abiMinor}; ${flags})`],
    ['family_id', r.familyId],
    ['image_id', r.imageId],
    ['vmpl', String(r.vmpl)],
    ['signature_algo', `${r.signatureAlgo} (ECDSA P-384 SHA-384)`],
    ['signing_key', `${r.signingKey}${r.authorKeyEn ? ', author key' : ''}${r.maskChipKey ? ', chip key masked' : ''}`],
    ['platform_info', `0x${r.platformInfo.raw}`],
    ['current_tcb', tcbText(r.currentTcb)],
    ['reported_tcb', tcbText(r.reportedTcb)],
    ['committed_tcb', tcbText(r.committedTcb)],
    ['launch_tcb', tcbText(r.launchTcb)],
    ['firmware', `current ${r.current.major}.${r.current.minor}.${r.current.build}, committed ${r.committed.major}.${r.committed.minor}.${r.committed.build}`],
    ...(r.cpuid ? [['cpuid', `family 0x${r.cpuid.family.toString(16)} model 0x${r.cpuid.model.toString(16)} stepping ${r.cpuid.stepping}`] as [string, string]] : []),
    ['report_data', r.reportData],
    ['measurement', r.measurement],
    ['host_data', r.hostData],
    ['id_key_digest', r.idKeyDigest],
    ['author_key_digest', r.authorKeyDigest],
    ['report_id', r.reportId],
    ['report_id_ma', r.reportIdMa],
    ['chip_id', r.chipId],
    ...(r.launchMitVector !== undefined ? [['launch_mit_vector', r.launchMitVector] as [string, string], ['current_mit_vector', r.currentMitVector ?? ''] as [string, string]] : []),
  ];
  return rows.map(([k, v]) => `  ${k.padEnd(18)} ${v}\n`).join('');
}

async function readInput(path: string, what: string): Promise<Buffer | string> {
  try {
    return await readFile(path);
  } catch (err) {
    return `cannot read the ${what} ${path}: ${(err as Error).message}`;
  }
}

interface SnpVerifyOptions {
  cert?: string;
  chain?: string;
  at?: string;
  json: boolean;
}

/** What the checks found, for printing. */
interface Outcome {
  verified?: VerifiedSnpReport;
  failure?: AttestdError;
  lines: CheckLine[];
}

/** Checks --at; returns the time to verify at, or undefined once the usage error is printed. */
function verificationTime(at: string | undefined): Date | undefined {
  const time = at === undefined ? new Date() : new Date(at);
  if (Number.isNaN(time.getTime())) {
    process.stderr.write(`attestctl: --at takes an ISO 8601 time, not "${at}"\n`);
    return undefined;
  }
  return time;
}

/** Reads the report, certificate and chain at once; on the first that cannot be read, prints why and returns undefined. */
async function readInputs(reportPath: string, certPath: string, chainPath: string): Promise<[Buffer, Buffer, Buffer] | undefined> {
  const inputs = await Promise.all([
    readInput(reportPath, 'report'), readInput(certPath, 'certificate'), readInput(chainPath, 'chain'),
  ]);
  for (const input of inputs) {
    if (typeof input === 'string') {
      process.stderr.write(`attestctl: ${input}\n`);
      return undefined;
    }
  }
  return inputs as [Buffer, Buffer, Buffer];
}

/** The leaf certificate (PEM or DER) and the chain sorted out of the chain file; undefined once the reason is printed. */
function certAndChain(certFile: Buffer, chainFile: Buffer, certPath: string): { cert: Uint8Array; chain: SnpChain } | undefined {
  let cert: Uint8Array | undefined;
  let chain: SnpChain | string;
  try {
    cert = isPem(certFile) ? pemCertificates(certFile.toString('latin1'), 'SNP_CERT_CHAIN_INVALID')[0] : new Uint8Array(certFile);
    chain = pickChain(pemCertificates(chainFile.toString('latin1'), 'SNP_CERT_CHAIN_INVALID'), cert ?? new Uint8Array(0));
  } catch (err) {
    chain = `${(err as Error).message}`;
  }
  if (!cert || typeof chain === 'string') {
    process.stderr.write(`attestctl: ${typeof chain === 'string' ? chain : 'no certificate in ' + certPath}\n`);
    return undefined;
  }
  return { cert, chain };
}

/** Runs every check, one line each in the verifier's order; a failed one ends the run with its error in `failure`. */
function runChecks(report: Buffer, cert: Uint8Array, chain: SnpChain, at: Date): Outcome {
  const lines: CheckLine[] = SNP_CHECKS.map((check) => ({ check, result: 'not run', detail: '' }));
  const record = (check: SnpCheck, passed: boolean, detail: string): void => {
    const line = lines.find((l) => l.check === check);
    if (line) Object.assign(line, { result: passed ? 'pass' : 'fail', detail });
  };
  try {
    return { verified: verifySnpReport({ report, cert, chain, at, onCheck: record }), lines };
  } catch (err) {
    if (!(err instanceof AttestdError)) throw err;
    return { failure: err, lines };
  }
}

/** The verified report, or on failure the fields as parsed for diagnosis (marked unverified when printed). */
function shownReport(o: Outcome, report: Buffer): SnpReport | undefined {
  if (o.verified) return o.verified.report;
  try {
    return parseSnpReport(report);
  } catch {
    return undefined;
  }
}

function printJsonOutcome(o: Outcome, shown: SnpReport | undefined): void {
  const v = o.verified;
  const out = v
    ? { verified: true, product: v.product, signingKey: v.signingKey, keyExtensions: v.keyExtensions, certificate: v.certificate, arkSpkiSha256: v.arkSpkiSha256, report: v.report, checks: o.lines }
    : { verified: false, error: { code: o.failure?.code, message: o.failure?.message }, unverifiedReport: shown, checks: o.lines };
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

function printTextOutcome(o: Outcome, shown: SnpReport | undefined): void {
  const v = o.verified;
  let text = v
    ? `SEV-SNP report: ${v.product}, signed by ${v.signingKey} (${v.keyExtensions.productName ?? ''})\n`
    : 'SEV-SNP report (NOT verified; fields shown as parsed):\n';
  if (shown) text += reportText(shown);
  text += 'checks:\n';
  for (const l of o.lines) text += `  ${l.result.toUpperCase().padEnd(8)} ${l.check.padEnd(17)} ${l.detail}\n`;
  text += v ? 'verified\n' : `FAILED: ${o.failure?.code ?? ''}: ${o.failure?.message ?? ''}\n`;
  process.stdout.write(text);
}

export async function cvmVerifySnp(reportPath: string | undefined, opts: SnpVerifyOptions): Promise<number> {
  if (!reportPath || !opts.cert || !opts.chain) {
    process.stderr.write(`attestctl: cvm verify-snp needs REPORT, --cert and --chain\n\n${CVM_VERIFY_SNP_HELP}\n`);
    return EXIT.USAGE;
  }
  const at = verificationTime(opts.at);
  if (!at) return EXIT.USAGE;
  const inputs = await readInputs(reportPath, opts.cert, opts.chain);
  if (!inputs) return EXIT.FAILURE;
  const [report, certFile, chainFile] = inputs;
  const leaf = certAndChain(certFile, chainFile, opts.cert);
  if (!leaf) return EXIT.FAILURE;

  const outcome = runChecks(report, leaf.cert, leaf.chain, at);
  const shown = shownReport(outcome, report);
  if (opts.json) printJsonOutcome(outcome, shown);
  else printTextOutcome(outcome, shown);
  return outcome.verified ? EXIT.OK : VERIFY_FAILED;
}
