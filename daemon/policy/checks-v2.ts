/**
 * Checks on the version 2 sections that the schema cannot state: that a version 1 file
 * uses none of them, that an update window only widens PCRs the policy already requires
 * and ends at a real date, the SHA-1 opt-in for every bank-keyed list, normal-form paths,
 * contradictory command-line substrings, one digest per IMA entry, CVM sections that fit
 * the chosen type, collateral age bounds, and GPUs named once. Like checks.ts, each check
 * looks only at parts whose type is already right and leaves type errors to the schema.
 */
import type { Located, Segment, SourceTree } from './document.js';
import { pathFormProblem } from './checks.js';
import { COLLATERAL_AGE_BOUNDS, checkBounds, parseLongDuration } from './duration.js';

type Obj = Record<string, unknown>;

export const V2_SECTIONS = ['update_window', 'boot', 'ima', 'cvm', 'gpu'] as const;
const IMA_DIGEST_KEYS = ['sha1', 'sha256', 'sha384', 'sha512'];
/** The written form the schema accepts for update_window.until; utcInstant checks the date. */
const UTC_FORM = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$/;
const SHA1_REFUSED = 'expected no sha1 bank: SHA-1 values are accepted only when the policy sets allow_sha1: true at the top level';

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function own(o: Obj, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}

/** "2027-02-30T00:00:00Z" fits the pattern but names no instant; Date would roll it over. */
export function utcInstant(text: string): number | undefined {
  const ms = Date.parse(text);
  if (!Number.isFinite(ms)) return undefined;
  return new Date(ms).toISOString() === `${text.slice(0, 19)}.000Z` ? ms : undefined;
}

/** Where a check puts a problem: at a pointer into the document, or at its key. */
type Report = (at: Segment[], message: string, onKey?: boolean) => void;

/** What every section's checks share. */
interface Check {
  report: Report;
  /** The top-level allow_sha1: true, without which SHA-1 values are refused everywhere. */
  sha1Allowed: boolean;
}

/**
 * The problems the file comment names, section by section in a fixed order: version 1
 * sections, each rule's lease.gpus, update_window, boot, ima, cvm, gpu.
 */
export function v2Problems(value: unknown, tree: SourceTree): Located[] {
  const out: Located[] = [];
  if (!isObj(value)) return out;
  const check: Check = {
    report: (at, message, onKey = false) => {
      out.push({ ...tree.locate(at, onKey), message });
    },
    sha1Allowed: own(value, 'allow_sha1') === true,
  };
  const versionOne = own(value, 'version') === 1;
  if (versionOne) versionOneSections(value, check.report);
  const rules = own(value, 'rules');
  if (Array.isArray(rules)) rules.forEach((rule, i) => ruleGpus(rule, i, versionOne, check.report));
  if (Array.isArray(rules) && versionOne) rules.forEach((rule, i) => ruleIntent(rule, i, check.report));
  if (Array.isArray(rules) && versionOne) rules.forEach((rule, i) => ruleLineage(rule, i, check.report));
  if (Array.isArray(rules) && versionOne) rules.forEach((rule, i) => ruleAuthorization(rule, i, check.report));
  const window = own(value, 'update_window');
  if (isObj(window)) updateWindow(window, own(value, 'pcrs'), check);
  const boot = own(value, 'boot');
  if (isObj(boot)) bootSection(boot, check);
  const ima = own(value, 'ima');
  if (isObj(ima)) imaSection(ima, check);
  const cvm = own(value, 'cvm');
  if (isObj(cvm)) cvmSection(cvm, check);
  const gpu = own(value, 'gpu');
  if (isObj(gpu)) gpuSection(gpu, check.report);
  return out;
}

/** A version 1 file has none of the version 2 sections. */
function versionOneSections(value: Obj, report: Report): void {
  for (const key of V2_SECTIONS) {
    if (own(value, key) !== undefined) report([key], `expected version: 2 for the ${key} section; a version 1 policy does not have it`, true);
  }
}

/** A rule's intent constraints exist only in version 2. */
function ruleIntent(rule: unknown, i: number, report: Report): void {
  if (isObj(rule) && own(rule, 'intent') !== undefined) {
    report(['rules', i, 'intent'], 'expected version: 2 for a rule\'s intent; a version 1 policy does not have it', true);
  }
}

/** A rule's lineage exists only in version 2. */
function ruleLineage(rule: unknown, i: number, report: Report): void {
  if (isObj(rule) && own(rule, 'lineage') !== undefined) {
    report(['rules', i, 'lineage'], 'expected version: 2 for a rule\'s lineage; a version 1 policy does not have it', true);
  }
}

/** A rule's authorization requirement exists only in version 2. */
function ruleAuthorization(rule: unknown, i: number, report: Report): void {
  if (isObj(rule) && own(rule, 'authorization') !== undefined) {
    report(['rules', i, 'authorization'], 'expected version: 2 for a rule\'s authorization; a version 1 policy does not have it', true);
  }
}

/** A rule's lease.gpus exists only in version 2 and names each GPU once. */
function ruleGpus(rule: unknown, i: number, versionOne: boolean, report: Report): void {
  const lease = isObj(rule) ? own(rule, 'lease') : undefined;
  const gpus = isObj(lease) ? own(lease, 'gpus') : undefined;
  if (gpus === undefined) return;
  if (versionOne) {
    report(['rules', i, 'lease', 'gpus'], 'expected version: 2 for lease.gpus; a version 1 policy does not have it', true);
  }
  if (!Array.isArray(gpus)) return;
  // Parsed objects have no prototype, so only scalars are turned into text here.
  const key = (g: unknown): string | undefined =>
    typeof g === 'string' ? g.toLowerCase() : typeof g === 'number' ? String(g) : undefined;
  repeatedGpus(gpus, key, ['rules', i, 'lease', 'gpus'], report);
}

/** Each GPU in `list` once, by `key` (entries without one are the schema's concern). */
function repeatedGpus(list: unknown[], key: (g: unknown) => string | undefined, at: Segment[], report: Report): void {
  const seen = new Set<string>();
  list.forEach((g, j) => {
    const k = key(g);
    if (k === undefined) return;
    if (seen.has(k)) report([...at, j], `expected each GPU once; ${JSON.stringify(g)} is listed twice`);
    seen.add(k);
  });
}

/** A path field, when it is a string, in normal form. */
function pathForm(check: Check, at: Segment[], raw: unknown, trailingSlashAllowed = false): void {
  if (typeof raw !== 'string') return;
  const problem = pathFormProblem(raw, trailingSlashAllowed);
  if (problem !== undefined) check.report(at, problem);
}

/** A bank-keyed mapping has no sha1 key unless the policy allows SHA-1. */
function noSha1Bank(check: Check, at: Segment[], holder: unknown): void {
  if (!check.sha1Allowed && isObj(holder) && own(holder, 'sha1') !== undefined) check.report([...at, 'sha1'], SHA1_REFUSED, true);
}

/** A bank choice is not sha1 unless the policy allows SHA-1. */
function noSha1Choice(check: Check, at: Segment[], raw: unknown): void {
  if (!check.sha1Allowed && raw === 'sha1') check.report(at, 'expected a bank other than sha1, unless the policy sets allow_sha1: true at the top level');
}

/**
 * until names a real instant; the window's pcrs have no sha1 bank without the opt-in, and
 * every PCR in them is one the top-level pcrs (`top`) also names.
 */
function updateWindow(window: Obj, top: unknown, check: Check): void {
  const until = own(window, 'until');
  if (typeof until === 'string' && UTC_FORM.test(until) && utcInstant(until) === undefined) {
    check.report(['update_window', 'until'], `expected a real UTC date and time, found ${JSON.stringify(until)}`);
  }
  const pcrs = own(window, 'pcrs');
  noSha1Bank(check, ['update_window', 'pcrs'], pcrs);
  if (!isObj(pcrs)) return;
  for (const bank of Object.keys(pcrs)) {
    const entries = own(pcrs, bank);
    if (!isObj(entries)) continue;
    const required = isObj(top) ? own(top, bank) : undefined;
    for (const index of Object.keys(entries)) {
      if (isObj(required) && own(required, index) !== undefined) continue;
      check.report(['update_window', 'pcrs', bank, index], `expected a PCR the top-level pcrs also names (${bank}:${index}); a window only adds values to a required PCR`, true);
    }
  }
}

/**
 * event_log in normal form, the SHA-1 opt-in for bank and boot_applications, and no
 * forbidden command-line substring that a required one contains.
 */
function bootSection(boot: Obj, check: Check): void {
  pathForm(check, ['boot', 'event_log'], own(boot, 'event_log'));
  noSha1Choice(check, ['boot', 'bank'], own(boot, 'bank'));
  noSha1Bank(check, ['boot', 'boot_applications'], own(boot, 'boot_applications'));
  const cmdline = own(boot, 'kernel_cmdline');
  const req = isObj(cmdline) ? own(cmdline, 'require') : undefined;
  const forbid = isObj(cmdline) ? own(cmdline, 'forbid') : undefined;
  if (!Array.isArray(req) || !Array.isArray(forbid)) return;
  forbid.forEach((f, j) => {
    if (typeof f !== 'string') return;
    const clash = req.find((r) => typeof r === 'string' && r.includes(f));
    if (clash !== undefined) {
      check.report(['boot', 'kernel_cmdline', 'forbid', j], `expected a substring no required one contains; every command line must contain ${JSON.stringify(clash)}`);
    }
  });
}

/**
 * list and the allow and exclude paths in normal form (an exclude may end in /), the SHA-1
 * opt-in for bank and allow digests, and exactly one digest per allow entry.
 */
function imaSection(ima: Obj, check: Check): void {
  pathForm(check, ['ima', 'list'], own(ima, 'list'));
  noSha1Choice(check, ['ima', 'bank'], own(ima, 'bank'));
  const allow = own(ima, 'allow');
  if (Array.isArray(allow)) {
    allow.forEach((entry, i) => {
      if (!isObj(entry)) return;
      pathForm(check, ['ima', 'allow', i, 'path'], own(entry, 'path'));
      if (!check.sha1Allowed && own(entry, 'sha1') !== undefined) {
        check.report(['ima', 'allow', i, 'sha1'], 'expected a digest other than sha1, unless the policy sets allow_sha1: true at the top level', true);
      }
      const digests = IMA_DIGEST_KEYS.filter((k) => own(entry, k) !== undefined);
      if (digests.length !== 1) {
        check.report(['ima', 'allow', i], `expected exactly one file digest (sha1, sha256, sha384 or sha512), found ${digests.length === 0 ? 'none' : digests.join(' and ')}`);
      }
    });
  }
  const exclude = own(ima, 'exclude');
  if (Array.isArray(exclude)) exclude.forEach((p, j) => pathForm(check, ['ima', 'exclude', j], p, true));
}

/** collateral in normal form, no section for the other CVM type, max_collateral_age in bounds. */
function cvmSection(cvm: Obj, check: Check): void {
  pathForm(check, ['cvm', 'collateral'], own(cvm, 'collateral'));
  const type = own(cvm, 'type');
  for (const [section, other] of [['snp', 'tdx'], ['tdx', 'snp']] as const) {
    if (type === other && own(cvm, section) !== undefined) {
      check.report(['cvm', section], `expected no ${section} section when type is ${other}`, true);
    }
  }
  const age = own(cvm, 'max_collateral_age');
  const ms = typeof age === 'string' ? parseLongDuration(age) : undefined;
  if (ms === undefined) return;
  const problem = checkBounds(ms, COLLATERAL_AGE_BOUNDS, { days: true });
  if (problem !== undefined) check.report(['cvm', 'max_collateral_age'], problem);
}

/** pinned_uuids names each GPU once, ignoring case. */
function gpuSection(gpu: Obj, report: Report): void {
  // RIMs are compared with the GPUs' own reports: without them there is nothing to compare.
  if (own(gpu, 'rims') !== undefined && own(gpu, 'attestation') !== 'required') {
    report(['gpu', 'rims'], 'expected attestation: required alongside rims; RIMs are compared with the GPUs\' attestation reports');
  }
  const pinned = own(gpu, 'pinned_uuids');
  if (!Array.isArray(pinned)) return;
  repeatedGpus(pinned, (u) => (typeof u === 'string' ? u.toLowerCase() : undefined), ['gpu', 'pinned_uuids'], report);
}
