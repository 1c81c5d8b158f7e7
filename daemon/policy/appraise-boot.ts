/**
 * Appraisal of measured boot from the TCG event log. Pure and deterministic: the log is
 * parsed by the caller (verify/eventlog), the quoted PCRs come from a verified quote, and
 * the same input gives the same reasons in the same order.
 *
 * The log is what the platform claims. Only a replay that matches the quote makes its
 * events evidence, and only for the PCRs the quote covers; event data is moreover trusted
 * only where its digest commits to it (UEFI variables, grub's command lines). An image's
 * digest is what was extended, so it needs no such binding.
 */
import { createHash } from 'node:crypto';
import { isHashAlg } from '../verify/tpm-alg.js';
import type { PcrBank } from '../verify/pcr.js';
import { EV } from '../verify/eventlog/event-types.js';
import { decodeDetails } from '../verify/eventlog/events.js';
import { checkAgainstQuoted, replay } from '../verify/eventlog/replay.js';
import { GUID } from '../verify/eventlog/text.js';
import { separatorWarnings } from '../verify/eventlog/warnings.js';
import { digestsMatchData } from '../verify/eventlog/binding.js';
import type { EventDetails, EventLog, TcgEvent } from '../verify/eventlog/types.js';
import type { Reason } from '../base/reason.js';
import type { BootPolicy } from './types.js';

/**
 * The PCRs a boot log accounts for: firmware (0-7), boot loader (8, 9), systemd-stub's
 * command line (12), shim (14). requiredSelections asks the collector to quote them.
 */
export const BOOT_PCRS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 14];

/** Subjects of certificates that vendors ship only for testing (lowercase). */
const TEST_KEY_MARKERS = ['do not trust', 'do not ship', 'test key'];
const KEY_VARIABLES: readonly { guid: string; name: string }[] = [
  { guid: GUID.EFI_GLOBAL_VARIABLE, name: 'PK' },
  { guid: GUID.EFI_GLOBAL_VARIABLE, name: 'KEK' },
  { guid: GUID.IMAGE_SECURITY_DATABASE, name: 'db' },
];
/** grub 2.04+ and older grub's prefixes for the command line it hands the kernel. */
const CMDLINE_PREFIXES = ['kernel_cmdline: ', 'grub_kernel_cmdline '];
/** systemd-stub measures the kernel command line, as text, into PCR 12. */
const STUB_CMDLINE_PCR = 12;
const SECURE_BOOT_PCR = 7;

function eventName(e: TcgEvent): string {
  return `PCR ${e.pcr} event ${e.index} (${e.typeName})`;
}

/** Log text is attacker-written: shown bounded and without control characters. */
function shown(text: string, max = 160): string {
  let out = '';
  for (const ch of text) {
    if (out.length >= max) return `${out}...`;
    const c = ch.codePointAt(0) ?? 0;
    out += c < 0x20 || c === 0x7f ? ' ' : ch;
  }
  return out;
}

interface CommandLine {
  event: TcgEvent;
  text: string;
  bound: boolean;
}

/** A command line is evidence only when every known digest is of its text (with or without a NUL). */
function commandLineBound(e: TcgEvent, text: string): boolean {
  if (digestsMatchData(e)) return true;
  const candidates = [Buffer.from(text, 'utf8'), Buffer.from(`${text}\0`, 'utf8')];
  let checked = 0;
  for (const [alg, digest] of e.digests) {
    if (!isHashAlg(alg)) continue;
    if (!candidates.some((c) => createHash(alg).update(c).digest().equals(digest))) return false;
    checked += 1;
  }
  return checked > 0;
}

function commandLines(events: readonly TcgEvent[], details: (e: TcgEvent) => EventDetails): CommandLine[] {
  const out: CommandLine[] = [];
  for (const e of events) {
    if (e.type !== EV.IPL) continue;
    const text = details(e)['text'];
    if (typeof text !== 'string') continue;
    const prefix = CMDLINE_PREFIXES.find((p) => text.startsWith(p));
    const line = prefix !== undefined ? text.slice(prefix.length) : e.pcr === STUB_CMDLINE_PCR ? text : undefined;
    if (line === undefined) continue;
    out.push({ event: e, text: line, bound: commandLineBound(e, line) });
  }
  return out;
}

/**
 * Reasons the measured boot falls short of `boot`. Checks, in this order:
 * - the log replays to the quoted PCRs (EVENTLOG_REPLAY_MISMATCH; nothing else is checked
 *   then, since the events are no longer evidence);
 * - every event a check looks at lies in a PCR the quote covers in a bank the log carries
 *   (BOOT_PCR_NOT_QUOTED);
 * - secure_boot: required: every SecureBoot variable event in PCR 7 holds 1, and there is one
 *   (BOOT_SECURE_BOOT_OFF);
 * - forbid_test_keys: no PK, KEK or db certificate, and no certificate that verified a boot
 *   image, has a test subject (BOOT_TEST_KEY);
 * - every variable event used carries data its digests commit to (BOOT_EVENT_UNBOUND);
 * - boot_applications: each EV_EFI_BOOT_SERVICES_APPLICATION digest is allowed in some listed
 *   bank (BOOT_APPLICATION_NOT_ALLOWED);
 * - kernel_cmdline: each measured command line is bound to its digest (BOOT_CMDLINE_UNBOUND),
 *   contains every required substring (BOOT_CMDLINE_MISSING) and no forbidden one
 *   (BOOT_CMDLINE_FORBIDDEN); with substrings required, a log with no command line fails
 *   (BOOT_CMDLINE_NOT_MEASURED);
 * - nothing but the OS loader's own events follows the separator in PCRs 0-7, beyond the
 *   types allow_after_separator names, and no separator is repeated or an error separator
 *   (BOOT_EVENT_AFTER_SEPARATOR, BOOT_ERROR_SEPARATOR).
 */
export function appraiseBoot(boot: BootPolicy, log: EventLog, quoted: PcrBank[]): Reason[] {
  const replayed = replay(log);
  const mismatch = checkAgainstQuoted(replayed, quoted, BOOT_PCRS);
  if (mismatch.length > 0) return mismatch.map((r) => ({ code: r.code, message: r.message }));

  const verified = new Set<number>();
  for (const q of quoted) {
    if (!replayed.some((b) => b.alg === q.alg)) continue;
    for (const pcr of BOOT_PCRS) if (q.values.has(pcr)) verified.add(pcr);
  }
  const ctx = { uintn: log.specId?.uintnSize === 1 ? (4 as const) : (8 as const) };
  const details = (e: TcgEvent): EventDetails => e.details ?? decodeDetails(e.type, e.data, ctx);

  const reasons: Reason[] = [];
  const unquoted = new Set<number>();
  const vouched = (e: TcgEvent): boolean => {
    if (verified.has(e.pcr)) return true;
    unquoted.add(e.pcr);
    return false;
  };
  const checks: Reason[] = [];
  const add = (code: string, message: string): void => {
    checks.push({ code, message });
  };
  const unbound = (e: TcgEvent, what: string): boolean => {
    if (digestsMatchData(e)) return false;
    add('BOOT_EVENT_UNBOUND', `${eventName(e)} ${what}: the event data does not hash to its digests, so it cannot be trusted`);
    return true;
  };

  const variables = log.events.filter((e) => e.type === EV.EFI_VARIABLE_DRIVER_CONFIG && e.pcr === SECURE_BOOT_PCR);
  const variable = (e: TcgEvent, guid: string, name: string): boolean => {
    const d = details(e);
    return d.kind === 'uefi-variable' && d['guid'] === guid && d['name'] === name;
  };

  if (boot.secureBoot === 'required' || boot.forbidTestKeys) {
    if (!verified.has(SECURE_BOOT_PCR)) unquoted.add(SECURE_BOOT_PCR);
  }
  if (boot.secureBoot === 'required' && verified.has(SECURE_BOOT_PCR)) {
    const events = variables.filter((e) => variable(e, GUID.EFI_GLOBAL_VARIABLE, 'SecureBoot'));
    if (events.length === 0) add('BOOT_SECURE_BOOT_OFF', 'no SecureBoot variable is measured in PCR 7; policy requires Secure Boot');
    for (const e of events) {
      if (unbound(e, 'SecureBoot')) continue;
      const value = details(e)['value'];
      if (value !== 1) {
        add('BOOT_SECURE_BOOT_OFF', `${eventName(e)} SecureBoot is ${typeof value === 'number' ? value : 'not a single byte'}; policy requires 1`);
      }
    }
  }

  if (boot.forbidTestKeys && verified.has(SECURE_BOOT_PCR)) {
    const testSubject = (subject: unknown): subject is string =>
      typeof subject === 'string' && TEST_KEY_MARKERS.some((m) => subject.toLowerCase().includes(m));
    for (const e of log.events) {
      if (e.pcr !== SECURE_BOOT_PCR) continue;
      if (e.type === EV.EFI_VARIABLE_DRIVER_CONFIG) {
        const key = KEY_VARIABLES.find((k) => variable(e, k.guid, k.name));
        if (key === undefined || unbound(e, key.name)) continue;
        const lists = details(e)['signatureLists'];
        for (const list of Array.isArray(lists) ? (lists as { entries?: { subject?: unknown }[] }[]) : []) {
          for (const entry of list.entries ?? []) {
            if (testSubject(entry.subject)) add('BOOT_TEST_KEY', `${eventName(e)} ${key.name} holds a test certificate: ${shown(entry.subject)}`);
          }
        }
      } else if (e.type === EV.EFI_VARIABLE_AUTHORITY) {
        const authority = details(e)['authority'] as { subject?: unknown } | undefined;
        if (testSubject(authority?.subject) && !unbound(e, 'authority')) {
          add('BOOT_TEST_KEY', `${eventName(e)} a boot image was verified by a test certificate: ${shown(authority.subject)}`);
        }
      }
    }
  }

  if (boot.bootApplications !== undefined) {
    for (const e of log.events) {
      if (e.type !== EV.EFI_BOOT_SERVICES_APPLICATION || !vouched(e)) continue;
      const allowed = boot.bootApplications.some((b) => {
        const d = e.digests.get(b.alg);
        return d !== undefined && b.allowed.some((a) => a.equals(d));
      });
      if (allowed) continue;
      const path = details(e)['devicePath'];
      const where = typeof path === 'string' ? ` ${shown(path)}` : '';
      const present = boot.bootApplications.map((b) => ({ alg: b.alg, d: e.digests.get(b.alg) })).filter((x) => x.d !== undefined);
      const digest = present.length === 0
        ? `carries no ${boot.bootApplications.map((b) => b.alg).join(' or ')} digest`
        : `digest ${present.map((x) => `${x.alg}:${x.d?.toString('hex') ?? ''}`).join(', ')} is not in the allowed set`;
      add('BOOT_APPLICATION_NOT_ALLOWED', `${eventName(e)}${where} ${digest}`);
    }
  }

  if (boot.kernelCmdline !== undefined) {
    const { require, forbid } = boot.kernelCmdline;
    const lines = commandLines(log.events, details).filter((l) => vouched(l.event));
    if (lines.length === 0 && require.length > 0) {
      add('BOOT_CMDLINE_NOT_MEASURED', 'no kernel command line is measured in the event log; policy requires one');
    }
    for (const line of lines) {
      const name = eventName(line.event);
      if (!line.bound) {
        add('BOOT_CMDLINE_UNBOUND', `${name} command line does not hash to the event's digests, so it cannot be checked`);
        continue;
      }
      for (const r of require) {
        if (!line.text.includes(r)) add('BOOT_CMDLINE_MISSING', `${name} kernel command line lacks ${JSON.stringify(r)}: ${shown(line.text)}`);
      }
      for (const f of forbid) {
        if (line.text.includes(f)) add('BOOT_CMDLINE_FORBIDDEN', `${name} kernel command line contains ${JSON.stringify(f)}: ${shown(line.text)}`);
      }
    }
  }

  const tolerated = new Set(boot.allowAfterSeparator);
  for (const w of separatorWarnings(log.events)) {
    const e = log.events[w.event];
    if (e === undefined || !verified.has(e.pcr)) continue;
    if (e.type === EV.SEPARATOR) add('BOOT_EVENT_AFTER_SEPARATOR', `${eventName(e)} is a second separator`);
    else if (!tolerated.has(e.typeName)) add('BOOT_EVENT_AFTER_SEPARATOR', `${eventName(e)} comes after the separator in PCR ${e.pcr}`);
  }
  for (const e of log.events) {
    if (e.type === EV.SEPARATOR && e.pcr <= 7 && verified.has(e.pcr) && e.data.length === 4 && e.data.readUInt32LE(0) === 1) {
      add('BOOT_ERROR_SEPARATOR', `${eventName(e)} is an error separator: the firmware reported a pre-boot failure`);
    }
  }

  for (const pcr of [...unquoted].sort((a, b) => a - b)) {
    reasons.push({ code: 'BOOT_PCR_NOT_QUOTED', message: `PCR ${pcr} was not quoted in a bank the event log replays, so its events are not evidence` });
  }
  reasons.push(...checks);
  return reasons;
}
