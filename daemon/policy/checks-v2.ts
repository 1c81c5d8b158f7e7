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

export function v2Problems(value: unknown, tree: SourceTree): Located[] {
  const out: Located[] = [];
  const report = (at: Segment[], message: string, onKey = false): void => {
    out.push({ ...tree.locate(at, onKey), message });
  };
  if (!isObj(value)) return out;
  const sha1Allowed = own(value, 'allow_sha1') === true;

  if (own(value, 'version') === 1) {
    for (const key of V2_SECTIONS) {
      if (own(value, key) !== undefined) report([key], `expected version: 2 for the ${key} section; a version 1 policy does not have it`, true);
    }
  }
  const rules = own(value, 'rules');
  if (Array.isArray(rules)) {
    rules.forEach((rule, i) => {
      const lease = isObj(rule) ? own(rule, 'lease') : undefined;
      const gpus = isObj(lease) ? own(lease, 'gpus') : undefined;
      if (gpus === undefined) return;
      if (own(value, 'version') === 1) {
        report(['rules', i, 'lease', 'gpus'], 'expected version: 2 for lease.gpus; a version 1 policy does not have it', true);
      }
      if (!Array.isArray(gpus)) return;
      const seen = new Set<string>();
      gpus.forEach((g, j) => {
        // Parsed objects have no prototype, so only scalars are turned into text here.
        if (typeof g !== 'string' && typeof g !== 'number') return;
        const key = typeof g === 'string' ? g.toLowerCase() : String(g);
        if (seen.has(key)) report(['rules', i, 'lease', 'gpus', j], `expected each GPU once; ${JSON.stringify(g)} is listed twice`);
        seen.add(key);
      });
    });
  }

  const path = (at: Segment[], raw: unknown, trailingSlashAllowed = false): void => {
    if (typeof raw !== 'string') return;
    const problem = pathFormProblem(raw, trailingSlashAllowed);
    if (problem !== undefined) report(at, problem);
  };
  const sha1Bank = (at: Segment[], holder: unknown): void => {
    if (!sha1Allowed && isObj(holder) && own(holder, 'sha1') !== undefined) report([...at, 'sha1'], SHA1_REFUSED, true);
  };
  const sha1Choice = (at: Segment[], raw: unknown): void => {
    if (!sha1Allowed && raw === 'sha1') report(at, 'expected a bank other than sha1, unless the policy sets allow_sha1: true at the top level');
  };

  const window = own(value, 'update_window');
  if (isObj(window)) {
    const until = own(window, 'until');
    if (typeof until === 'string' && /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$/.test(until) && utcInstant(until) === undefined) {
      report(['update_window', 'until'], `expected a real UTC date and time, found ${JSON.stringify(until)}`);
    }
    const pcrs = own(window, 'pcrs');
    sha1Bank(['update_window', 'pcrs'], pcrs);
    const top = own(value, 'pcrs');
    if (isObj(pcrs)) {
      for (const bank of Object.keys(pcrs)) {
        const entries = own(pcrs, bank);
        if (!isObj(entries)) continue;
        const required = isObj(top) ? own(top, bank) : undefined;
        for (const index of Object.keys(entries)) {
          if (isObj(required) && own(required, index) !== undefined) continue;
          report(['update_window', 'pcrs', bank, index], `expected a PCR the top-level pcrs also names (${bank}:${index}); a window only adds values to a required PCR`, true);
        }
      }
    }
  }

  const boot = own(value, 'boot');
  if (isObj(boot)) {
    path(['boot', 'event_log'], own(boot, 'event_log'));
    sha1Choice(['boot', 'bank'], own(boot, 'bank'));
    sha1Bank(['boot', 'boot_applications'], own(boot, 'boot_applications'));
    const cmdline = own(boot, 'kernel_cmdline');
    const req = isObj(cmdline) ? own(cmdline, 'require') : undefined;
    const forbid = isObj(cmdline) ? own(cmdline, 'forbid') : undefined;
    if (Array.isArray(req) && Array.isArray(forbid)) {
      forbid.forEach((f, j) => {
        if (typeof f !== 'string') return;
        const clash = req.find((r) => typeof r === 'string' && r.includes(f));
        if (clash !== undefined) {
          report(['boot', 'kernel_cmdline', 'forbid', j], `expected a substring no required one contains; every command line must contain ${JSON.stringify(clash)}`);
        }
      });
    }
  }

  const ima = own(value, 'ima');
  if (isObj(ima)) {
    path(['ima', 'list'], own(ima, 'list'));
    sha1Choice(['ima', 'bank'], own(ima, 'bank'));
    const allow = own(ima, 'allow');
    if (Array.isArray(allow)) {
      allow.forEach((entry, i) => {
        if (!isObj(entry)) return;
        path(['ima', 'allow', i, 'path'], own(entry, 'path'));
        if (!sha1Allowed && own(entry, 'sha1') !== undefined) {
          report(['ima', 'allow', i, 'sha1'], 'expected a digest other than sha1, unless the policy sets allow_sha1: true at the top level', true);
        }
        const digests = IMA_DIGEST_KEYS.filter((k) => own(entry, k) !== undefined);
        if (digests.length !== 1) {
          report(['ima', 'allow', i], `expected exactly one file digest (sha1, sha256, sha384 or sha512), found ${digests.length === 0 ? 'none' : digests.join(' and ')}`);
        }
      });
    }
    const exclude = own(ima, 'exclude');
    if (Array.isArray(exclude)) exclude.forEach((p, j) => path(['ima', 'exclude', j], p, true));
  }

  const cvm = own(value, 'cvm');
  if (isObj(cvm)) {
    path(['cvm', 'collateral'], own(cvm, 'collateral'));
    const type = own(cvm, 'type');
    for (const [section, other] of [['snp', 'tdx'], ['tdx', 'snp']] as const) {
      if (type === other && own(cvm, section) !== undefined) {
        report(['cvm', section], `expected no ${section} section when type is ${other}`, true);
      }
    }
    const age = own(cvm, 'max_collateral_age');
    const ms = typeof age === 'string' ? parseLongDuration(age) : undefined;
    if (ms !== undefined) {
      const problem = checkBounds(ms, COLLATERAL_AGE_BOUNDS, { days: true });
      if (problem !== undefined) report(['cvm', 'max_collateral_age'], problem);
    }
  }

  const gpu = own(value, 'gpu');
  const pinned = isObj(gpu) ? own(gpu, 'pinned_uuids') : undefined;
  if (Array.isArray(pinned)) {
    const seen = new Set<string>();
    pinned.forEach((u, j) => {
      if (typeof u !== 'string') return;
      if (seen.has(u.toLowerCase())) report(['gpu', 'pinned_uuids', j], `expected each GPU once; ${JSON.stringify(u)} is listed twice`);
      seen.add(u.toLowerCase());
    });
  }
  return out;
}
