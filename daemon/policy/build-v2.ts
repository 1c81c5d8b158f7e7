/**
 * Typed forms of the version 2 sections, from a plain value that has passed the schema and
 * every check. Absent optional fields get their documented defaults here, in one place;
 * hex is lowercased and GPU uuids normalised so that appraisal compares like with like.
 */
import type { HashAlg } from '../verify/tpm-alg.js';
import { utcInstant } from './checks-v2.js';
import { parseLongDuration } from './duration.js';
import { BANK_ORDER } from './schema-parts.js';
import type {
  BankDigests,
  BootPolicy,
  CvmPolicy,
  CvmSnpPolicy,
  CvmTdxPolicy,
  GpuPolicy,
  ImaPolicy,
  PcrRequirement,
  RuleGpus,
  UpdateWindow,
} from './types.js';

type Obj = Record<string, unknown>;

function field<T>(o: Obj, key: string): T | undefined {
  return Object.prototype.hasOwnProperty.call(o, key) ? (o[key] as T) : undefined;
}

/** Hex in either case; identical digests kept once, in file order. */
export function digests(raw: readonly string[]): Buffer[] {
  const seen = new Set<string>();
  const out: Buffer[] = [];
  for (const hex of raw) {
    const lower = hex.toLowerCase();
    if (seen.has(lower)) continue;
    seen.add(lower);
    out.push(Buffer.from(lower, 'hex'));
  }
  return out;
}

export function pcrRequirements(pcrs: Obj): PcrRequirement[] {
  const out: PcrRequirement[] = [];
  for (const alg of BANK_ORDER) {
    const bank = field<Obj>(pcrs, alg);
    if (bank === undefined) continue;
    const indices = Object.keys(bank)
      .map(Number)
      .sort((a, b) => a - b);
    for (const index of indices) {
      const entry = bank[String(index)] as string | string[];
      out.push({ alg: alg satisfies HashAlg, index, allowed: digests(typeof entry === 'string' ? [entry] : entry) });
    }
  }
  return out;
}

/** "GPU-ABC..." and "gpu-abc..." name the same GPU; NVML prints "GPU-" and lowercase hex. */
export function normaliseGpuUuid(uuid: string): string {
  return uuid.toLowerCase().startsWith('gpu-') ? `GPU-${uuid.slice(4).toLowerCase()}` : uuid.toLowerCase();
}

const lowerList = (raw: readonly string[] | undefined): string[] | undefined => (raw === undefined ? undefined : [...new Set(raw.map((s) => s.toLowerCase()))]);

function bankDigests(raw: Obj): BankDigests[] {
  return BANK_ORDER.filter((alg) => field(raw, alg) !== undefined).map((alg) => ({ alg, allowed: digests(field<string[]>(raw, alg) ?? []) }));
}

function namedDigests(raw: Obj | undefined): Map<string, Buffer[]> | undefined {
  if (raw === undefined) return undefined;
  return new Map(Object.keys(raw).map((k) => [k, digests(field<string[]>(raw, k) ?? [])]));
}

export function updateWindow(raw: Obj): UpdateWindow {
  const until = String(field(raw, 'until'));
  const untilMs = utcInstant(until);
  if (untilMs === undefined) throw new TypeError('update_window.until passed validation but does not parse');
  return { until, untilMs, pcrs: pcrRequirements(field<Obj>(raw, 'pcrs') ?? {}) };
}

export function bootPolicy(raw: Obj): BootPolicy {
  const out: BootPolicy = {
    eventLog: String(field(raw, 'event_log')),
    bank: field<HashAlg>(raw, 'bank') ?? 'sha256',
    secureBoot: field<'required' | 'any'>(raw, 'secure_boot') ?? 'required',
    forbidTestKeys: field<boolean>(raw, 'forbid_test_keys') ?? true,
    allowAfterSeparator: [...(field<string[]>(raw, 'allow_after_separator') ?? [])],
  };
  const apps = field<Obj>(raw, 'boot_applications');
  if (apps !== undefined) out.bootApplications = bankDigests(apps);
  const cmdline = field<Obj>(raw, 'kernel_cmdline');
  if (cmdline !== undefined) {
    out.kernelCmdline = { require: [...(field<string[]>(cmdline, 'require') ?? [])], forbid: [...(field<string[]>(cmdline, 'forbid') ?? [])] };
  }
  return out;
}

export function imaPolicy(raw: Obj): ImaPolicy {
  const allow = (field<Obj[]>(raw, 'allow') ?? []).map((entry) => {
    const alg = ['sha1', 'sha256', 'sha384', 'sha512'].find((k) => field(entry, k) !== undefined) ?? 'sha256';
    const path = field<string>(entry, 'path');
    const digest = `${alg}:${String(field(entry, alg)).toLowerCase()}`;
    return path === undefined ? { digest } : { path, digest };
  });
  return {
    list: String(field(raw, 'list')),
    bank: field<HashAlg>(raw, 'bank') ?? 'sha256',
    allow,
    exclude: [...(field<string[]>(raw, 'exclude') ?? [])],
    allowUnknownPaths: field<boolean>(raw, 'allow_unknown_paths') ?? false,
    allowViolations: field<boolean>(raw, 'allow_violations') ?? false,
  };
}

function snpPolicy(raw: Obj): CvmSnpPolicy {
  const out: CvmSnpPolicy = { debug: field<'forbidden' | 'allowed'>(raw, 'debug') ?? 'forbidden' };
  const tcb = field<Obj>(raw, 'min_tcb');
  if (tcb !== undefined) {
    const n = (k: string): number => Number(field(tcb, k));
    out.minTcb = { bootloader: n('bootloader'), tee: n('tee'), snp: n('snp'), microcode: n('microcode') };
    if (field(tcb, 'fmc') !== undefined) out.minTcb.fmc = n('fmc');
  }
  const measurements = lowerList(field<string[]>(raw, 'measurements'));
  if (measurements !== undefined) out.measurements = measurements;
  const vmpl = field<number>(raw, 'vmpl');
  if (vmpl !== undefined) out.vmpl = vmpl;
  const svn = field<number>(raw, 'min_guest_svn');
  if (svn !== undefined) out.minGuestSvn = svn;
  const hostData = field<string>(raw, 'host_data');
  if (hostData !== undefined) out.hostData = hostData.toLowerCase();
  return out;
}

function tdxPolicy(raw: Obj): CvmTdxPolicy {
  const out: CvmTdxPolicy = { debug: field<'forbidden' | 'allowed'>(raw, 'debug') ?? 'forbidden' };
  const mrtd = lowerList(field<string[]>(raw, 'mrtd'));
  if (mrtd !== undefined) out.mrtd = mrtd;
  const rtmr = field<Obj>(raw, 'rtmr');
  if (rtmr !== undefined) {
    out.rtmr = {};
    for (const i of [0, 1, 2, 3] as const) {
      const list = lowerList(field<string[]>(rtmr, String(i)));
      if (list !== undefined) out.rtmr[i] = list;
    }
  }
  const statuses = field<string[]>(raw, 'accepted_tcb_status');
  if (statuses !== undefined) out.acceptedTcbStatus = [...statuses];
  const svn = field<string>(raw, 'min_tee_tcb_svn');
  if (svn !== undefined) out.minTeeTcbSvn = svn.toLowerCase();
  return out;
}

export function cvmPolicy(raw: Obj): CvmPolicy {
  const out: CvmPolicy = {
    required: field<boolean>(raw, 'required') ?? true,
    type: field<'snp' | 'tdx' | 'any'>(raw, 'type') ?? 'any',
  };
  const collateral = field<string>(raw, 'collateral');
  if (collateral !== undefined) out.collateral = collateral;
  const age = field<string>(raw, 'max_collateral_age');
  const ageMs = age === undefined ? undefined : parseLongDuration(age);
  if (ageMs !== undefined) out.maxCollateralAgeMs = ageMs;
  const snp = field<Obj>(raw, 'snp');
  if (snp !== undefined) out.snp = snpPolicy(snp);
  const tdx = field<Obj>(raw, 'tdx');
  if (tdx !== undefined) out.tdx = tdxPolicy(tdx);
  return out;
}

export function gpuPolicy(raw: Obj): GpuPolicy {
  const out: GpuPolicy = {
    required: field<boolean>(raw, 'required') ?? true,
    ccMode: field<'on' | 'off' | 'any'>(raw, 'cc_mode') ?? 'any',
    devTools: field<'forbidden' | 'allowed'>(raw, 'dev_tools') ?? 'forbidden',
    ecc: field<'required' | 'any'>(raw, 'ecc') ?? 'any',
    attestation: field<'required' | 'off'>(raw, 'attestation') ?? 'off',
  };
  const drivers = field<string[]>(raw, 'driver_versions');
  if (drivers !== undefined) out.driverVersions = [...new Set(drivers)];
  const vbios = field<Obj>(raw, 'vbios_versions');
  if (vbios !== undefined) out.vbiosVersions = new Map(Object.keys(vbios).map((name) => [name, lowerList(field<string[]>(vbios, name)) ?? []]));
  const pinned = field<string[]>(raw, 'pinned_uuids');
  if (pinned !== undefined) out.pinnedUuids = [...new Set(pinned.map(normaliseGpuUuid))];
  const rims = field<Obj>(raw, 'rims');
  if (rims !== undefined) out.rims = { dir: field<string>(rims, 'dir') ?? '', required: field<boolean>(rims, 'required') ?? true };
  const modules = namedDigests(field<Obj>(raw, 'module_digests'));
  if (modules !== undefined) out.moduleDigests = modules;
  const firmware = namedDigests(field<Obj>(raw, 'firmware_digests'));
  if (firmware !== undefined) out.firmwareDigests = firmware;
  return out;
}

export function ruleGpus(raw: unknown): RuleGpus | undefined {
  if (raw === undefined) return undefined;
  if (raw === 'all') return 'all';
  return (raw as (string | number)[]).map((g) => (typeof g === 'string' ? normaliseGpuUuid(g) : g));
}
