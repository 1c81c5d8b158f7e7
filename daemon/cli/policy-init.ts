/**
 * attestctl policy init: a starting policy (version 2) written from this host's evidence as
 * it is now, commented, for an operator to trim: the PCR values the TPM holds, the boot
 * applications and Secure Boot state from the event log, the files IMA has measured, and
 * the GPUs and driver. It describes the present state; deciding it is good is the operator's.
 */
import { writeFile, readFile } from 'node:fs/promises';
import { Tpm } from '../evidence/tpm/tpm.js';
import { parseEventLog } from '../verify/eventlog/parse.js';
import { EV } from '../verify/eventlog/event-types.js';
import { parseImaList } from '../verify/ima/parse.js';
import { GpuCollector } from '../evidence/gpu/collector.js';
import type { GpuMeasurement } from '../verify/gpu/measurement.js';
import { parsePolicy } from '../policy/parse.js';
import { EXIT } from './exit-codes.js';

export const POLICY_INIT_HELP = `Usage: attestctl policy init [--tcti TCTI] [--event-log FILE] [--ima FILE] [--nvml PATH] [--output FILE]

Writes a starting policy from this host's evidence as it is now (PCRs 0-7 and 16, the boot
applications in the event log, Secure Boot, the files IMA measured, the GPUs and driver), with
comments, to FILE (default stdout). Review and trim it: it trusts whatever is there now.
Defaults: --tcti device:/dev/tpmrm0, --event-log /sys/kernel/security/tpm0/binary_bios_measurements,
--ima /sys/kernel/security/ima/ascii_runtime_measurements.`;

export interface PolicyInitOptions {
  tcti?: string;
  eventLog?: string;
  ima?: string;
  nvml?: string;
  output?: string;
}

const q = (s: string) => JSON.stringify(s);

function headerLines(): string[] {
  return ['# attestd policy written by `attestctl policy init` from this host as it was at', `# ${new Date().toISOString()}.`,
    '# It trusts the present state: review every value, remove what you do not mean to require.', 'version: 2', '',
    'attestation:', '  interval: 2s    # re-attest every 2 seconds', '  max_age: 6s     # refuse leases when the last passing appraisal is older', ''];
}

/** The SHA-256 PCRs the TPM holds now; undefined once the reason the TPM cannot be opened is printed. */
async function pcrLines(tcti: string): Promise<string[] | undefined> {
  let tpm: Tpm;
  try {
    tpm = await Tpm.open(tcti);
  } catch (err) {
    process.stderr.write(`attestctl: cannot open the TPM: ${(err as Error).message}\n`);
    return undefined;
  }
  try {
    const pcrs = await tpm.readPcrs('sha256', [0, 1, 2, 3, 4, 5, 6, 7, 16]);
    const lines = ['pcrs:', '  sha256:', '    # 0-7: firmware, its configuration, option ROMs, boot loader, Secure Boot state'];
    for (const [i, v] of [...pcrs.values].sort((a, b) => a[0] - b[0])) lines.push(`    ${i}: ${q(v.toString('hex'))}`);
    lines.push('');
    return lines;
  } finally {
    await tpm.close();
  }
}

/** The boot applications and Secure Boot state the event log records; nothing when it cannot be read or parsed. */
async function bootLines(logPath: string): Promise<string[]> {
  const log = await readFile(logPath).then((b) => parseEventLog(b, { details: true }), () => undefined);
  if (!log) return [];
  const apps = new Set<string>();
  let secureBoot = false;
  for (const e of log.events) {
    const d = e.digests.get('sha256');
    if (e.type === EV.EFI_BOOT_SERVICES_APPLICATION && d) apps.add(d.toString('hex'));
    const det = e.details as { kind?: string; name?: string; value?: unknown } | undefined;
    if (det?.kind === 'uefi-variable' && det.name === 'SecureBoot' && det.value === 1) secureBoot = true;
  }
  const lines = ['boot:', `  event_log: ${logPath}`, '  bank: sha256', `  secure_boot: ${secureBoot ? 'required' : 'any'}    # as measured now`,
    '  forbid_test_keys: true'];
  if (apps.size > 0) lines.push('  boot_applications:   # EV_EFI_BOOT_SERVICES_APPLICATION digests seen in this boot', '    sha256:',
    ...[...apps].map((a) => `      - ${q(a)}`));
  lines.push('');
  return lines;
}

/** Every file IMA has measured so far (SHA-256, UTF-8 paths); nothing when the list cannot be read or parsed. */
async function imaLines(imaPath: string): Promise<string[]> {
  const ima = await readFile(imaPath).then((b) => parseImaList(b), () => undefined);
  if (!ima) return [];
  const seen = new Map<string, string>();
  for (const e of ima.slice(1)) if (e.pathIsUtf8 && e.digestAlg === 'sha256' && !e.violation) seen.set(`${e.path}\0${e.digest.toString('hex')}`, e.path);
  // An allow list with nothing in it would refuse every file IMA measures from now on.
  if (seen.size === 0) return [`# ima: left out: ${imaPath} holds nothing beyond boot_aggregate yet; add an ima section once it does`, ''];
  const lines = ['ima:', `  list: ${imaPath}`, '  bank: sha256', '  exclude: ["/tmp/", "/var/tmp/"]', '  allow:   # every file IMA measured so far'];
  for (const [key, path] of [...seen].sort()) lines.push(`    - { path: ${q(path)}, sha256: ${q(key.split('\0')[1]!)} }`);
  lines.push('');
  return lines;
}

function gpuLines(gpu: GpuMeasurement): string[] {
  const models = new Map<string, Set<string>>();
  for (const g of gpu.gpus) models.set(g.name, (models.get(g.name) ?? new Set()).add(g.vbiosVersion));
  return ['gpu:', '  required: true', `  driver_versions: [${q(gpu.driverVersion)}]`, '  vbios_versions:',
    ...[...models].map(([m, v]) => `    ${q(m)}: [${[...v].map(q).join(', ')}]`),
    `  pinned_uuids: [${gpu.gpus.map((g) => q(g.uuid)).join(', ')}]   # a swapped card is drift`,
    `  cc_mode: ${gpu.ccState.ccFeature === 'enabled' ? 'on' : 'any'}`, ''];
}

function ruleLines(withGpus: boolean): string[] {
  const lines = ['rules:', '  - name: default    # edit: which workloads may lease, for how long', '    match:',
    `      uids: [${process.getuid?.() ?? 0}]`, '    lease:', '      ttl: 30s', '      scopes: ["default"]'];
  if (withGpus) lines.push('      gpus: all');
  return lines;
}

export async function policyInit(o: PolicyInitOptions): Promise<number> {
  const lines = headerLines();
  const pcrs = await pcrLines(o.tcti ?? 'device:/dev/tpmrm0');
  if (!pcrs) return EXIT.FAILURE;
  lines.push(...pcrs);
  lines.push(...await bootLines(o.eventLog ?? '/sys/kernel/security/tpm0/binary_bios_measurements'));
  lines.push(...await imaLines(o.ima ?? '/sys/kernel/security/ima/ascii_runtime_measurements'));
  const measured: GpuMeasurement | undefined = await new GpuCollector({ nvmlLibraryPath: o.nvml }).collect().then((g) => g.measurement, () => undefined);
  const gpu = measured && measured.source !== 'none' ? measured : undefined;
  if (gpu) lines.push(...gpuLines(gpu));
  lines.push(...ruleLines(gpu !== undefined));
  const text = lines.join('\n') + '\n';
  // What we write must load: a policy init that writes an invalid policy is a bug.
  parsePolicy(text, o.output ?? '(policy init)');
  if (o.output) await writeFile(o.output, text, { flag: 'wx' });
  else process.stdout.write(text);
  return EXIT.OK;
}
