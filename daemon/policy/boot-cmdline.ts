/**
 * The boot policy's kernel_cmdline check, on the command lines the boot loader (grub, in
 * PCR 8) or systemd-stub (PCR 12) measured. A command line is evidence only when the event's
 * digests are of its text.
 */
import { createHash } from 'node:crypto';
import { isHashAlg } from '../verify/tpm-alg.js';
import { EV } from '../verify/eventlog/event-types.js';
import { digestsMatchData } from '../verify/eventlog/binding.js';
import type { TcgEvent } from '../verify/eventlog/types.js';
import type { BootPolicy } from './types.js';
import { eventName, shown } from './boot-appraisal.js';
import type { BootAppraisal } from './boot-appraisal.js';

/** grub 2.04+ and older grub's prefixes for the command line it hands the kernel. */
const CMDLINE_PREFIXES = ['kernel_cmdline: ', 'grub_kernel_cmdline '];
/** systemd-stub measures the kernel command line, as text, into PCR 12. */
const STUB_CMDLINE_PCR = 12;

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

function commandLines(a: BootAppraisal): CommandLine[] {
  const out: CommandLine[] = [];
  for (const e of a.log.events) {
    if (e.type !== EV.IPL) continue;
    const text = a.details(e)['text'];
    if (typeof text !== 'string') continue;
    const prefix = CMDLINE_PREFIXES.find((p) => text.startsWith(p));
    const line = prefix !== undefined ? text.slice(prefix.length) : e.pcr === STUB_CMDLINE_PCR ? text : undefined;
    if (line === undefined) continue;
    out.push({ event: e, text: line, bound: commandLineBound(e, line) });
  }
  return out;
}

/**
 * Each measured command line in a quoted PCR, in log order, is bound to its digest
 * (BOOT_CMDLINE_UNBOUND), contains every required substring (BOOT_CMDLINE_MISSING) and no
 * forbidden one (BOOT_CMDLINE_FORBIDDEN); with substrings required, a log with no command
 * line fails (BOOT_CMDLINE_NOT_MEASURED).
 */
export function kernelCmdlineChecks(a: BootAppraisal, cmdline: NonNullable<BootPolicy['kernelCmdline']>): void {
  const { require, forbid } = cmdline;
  const lines = commandLines(a).filter((l) => a.vouched(l.event));
  if (lines.length === 0 && require.length > 0) {
    a.add('BOOT_CMDLINE_NOT_MEASURED', 'no kernel command line is measured in the event log; policy requires one');
  }
  for (const line of lines) {
    const name = eventName(line.event);
    if (!line.bound) {
      a.add('BOOT_CMDLINE_UNBOUND', `${name} command line does not hash to the event's digests, so it cannot be checked`);
      continue;
    }
    for (const r of require) {
      if (!line.text.includes(r)) a.add('BOOT_CMDLINE_MISSING', `${name} kernel command line lacks ${JSON.stringify(r)}: ${shown(line.text)}`);
    }
    for (const f of forbid) {
      if (line.text.includes(f)) a.add('BOOT_CMDLINE_FORBIDDEN', `${name} kernel command line contains ${JSON.stringify(f)}: ${shown(line.text)}`);
    }
  }
}
