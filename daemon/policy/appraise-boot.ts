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
import type { PcrBank } from '../verify/pcr.js';
import { EV } from '../verify/eventlog/event-types.js';
import { checkAgainstQuoted, replay } from '../verify/eventlog/replay.js';
import { separatorWarnings } from '../verify/eventlog/warnings.js';
import type { EventLog } from '../verify/eventlog/types.js';
import type { Reason } from '../base/reason.js';
import { BootAppraisal, eventName, shown } from './boot-appraisal.js';
import { kernelCmdlineChecks } from './boot-cmdline.js';
import { secureBootChecks } from './boot-secure-boot.js';
import type { BankDigests, BootPolicy } from './types.js';

/**
 * The PCRs a boot log accounts for: firmware (0-7), boot loader (8, 9), systemd-stub's
 * command line (12), shim (14). requiredSelections asks the collector to quote them.
 */
export const BOOT_PCRS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 14];

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
 * Each step's own comment (here, in boot-secure-boot.ts and in boot-cmdline.ts) details it.
 */
export function appraiseBoot(boot: BootPolicy, log: EventLog, quoted: PcrBank[]): Reason[] {
  const replayed = replay(log);
  const mismatch = checkAgainstQuoted(replayed, quoted, BOOT_PCRS);
  if (mismatch.length > 0) return mismatch.map((r) => ({ code: r.code, message: r.message }));

  const a = new BootAppraisal(log, verifiedPcrs(replayed, quoted));
  secureBootChecks(a, boot);
  if (boot.bootApplications !== undefined) bootApplicationChecks(a, boot.bootApplications);
  if (boot.kernelCmdline !== undefined) kernelCmdlineChecks(a, boot.kernelCmdline);
  separatorChecks(a, boot.allowAfterSeparator);
  return a.reasons();
}

/** The boot PCRs quoted in a bank the log was replayed in: the only ones whose events are evidence. */
function verifiedPcrs(replayed: readonly PcrBank[], quoted: readonly PcrBank[]): Set<number> {
  const verified = new Set<number>();
  for (const q of quoted) {
    if (!replayed.some((b) => b.alg === q.alg)) continue;
    for (const pcr of BOOT_PCRS) if (q.values.has(pcr)) verified.add(pcr);
  }
  return verified;
}

/**
 * Each EV_EFI_BOOT_SERVICES_APPLICATION in a quoted PCR, in log order, has a digest allowed
 * in some listed bank (BOOT_APPLICATION_NOT_ALLOWED, naming its device path and digests).
 */
function bootApplicationChecks(a: BootAppraisal, apps: readonly BankDigests[]): void {
  for (const e of a.log.events) {
    if (e.type !== EV.EFI_BOOT_SERVICES_APPLICATION || !a.vouched(e)) continue;
    const allowed = apps.some((b) => {
      const d = e.digests.get(b.alg);
      return d !== undefined && b.allowed.some((x) => x.equals(d));
    });
    if (allowed) continue;
    const path = a.details(e)['devicePath'];
    const where = typeof path === 'string' ? ` ${shown(path)}` : '';
    const present = apps.map((b) => ({ alg: b.alg, d: e.digests.get(b.alg) })).filter((x) => x.d !== undefined);
    const digest = present.length === 0
      ? `carries no ${apps.map((b) => b.alg).join(' or ')} digest`
      : `digest ${present.map((x) => `${x.alg}:${x.d?.toString('hex') ?? ''}`).join(', ')} is not in the allowed set`;
    a.add('BOOT_APPLICATION_NOT_ALLOWED', `${eventName(e)}${where} ${digest}`);
  }
}

/**
 * In quoted PCRs: nothing but the OS loader's own events follows the separator in PCRs 0-7,
 * beyond the types `tolerated` names, and no separator is repeated
 * (BOOT_EVENT_AFTER_SEPARATOR); then, in log order, no separator in PCRs 0-7 is an error
 * separator (BOOT_ERROR_SEPARATOR).
 */
function separatorChecks(a: BootAppraisal, tolerated: readonly string[]): void {
  const allowed = new Set(tolerated);
  for (const w of separatorWarnings(a.log.events)) {
    const e = a.log.events[w.event];
    if (e === undefined || !a.verified.has(e.pcr)) continue;
    if (e.type === EV.SEPARATOR) a.add('BOOT_EVENT_AFTER_SEPARATOR', `${eventName(e)} is a second separator`);
    else if (!allowed.has(e.typeName)) a.add('BOOT_EVENT_AFTER_SEPARATOR', `${eventName(e)} comes after the separator in PCR ${e.pcr}`);
  }
  for (const e of a.log.events) {
    if (e.type === EV.SEPARATOR && e.pcr <= 7 && a.verified.has(e.pcr) && e.data.length === 4 && e.data.readUInt32LE(0) === 1) {
      a.add('BOOT_ERROR_SEPARATOR', `${eventName(e)} is an error separator: the firmware reported a pre-boot failure`);
    }
  }
}
