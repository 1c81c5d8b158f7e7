/**
 * The boot policy's Secure Boot checks (secure_boot, forbid_test_keys), on the UEFI variables
 * and image authorities the firmware measured into PCR 7. Variable data is trusted only where
 * its digests commit to it.
 */
import { EV } from '../verify/eventlog/event-types.js';
import { GUID } from '../verify/eventlog/text.js';
import type { TcgEvent } from '../verify/eventlog/types.js';
import type { BootPolicy } from './types.js';
import { eventName, shown } from './boot-appraisal.js';
import type { BootAppraisal } from './boot-appraisal.js';

const SECURE_BOOT_PCR = 7;
/** Subjects of certificates that vendors ship only for testing (lowercase). */
const TEST_KEY_MARKERS = ['do not trust', 'do not ship', 'test key'];
const KEY_VARIABLES: readonly { guid: string; name: string }[] = [
  { guid: GUID.EFI_GLOBAL_VARIABLE, name: 'PK' },
  { guid: GUID.EFI_GLOBAL_VARIABLE, name: 'KEK' },
  { guid: GUID.IMAGE_SECURITY_DATABASE, name: 'db' },
];

/**
 * With secure_boot: required or forbid_test_keys, PCR 7 must be quoted (else only
 * BOOT_PCR_NOT_QUOTED); then Secure Boot is on (secureBootOn), and then no test key
 * (noTestKeys).
 */
export function secureBootChecks(a: BootAppraisal, boot: BootPolicy): void {
  if (boot.secureBoot !== 'required' && !boot.forbidTestKeys) return;
  if (!a.needs(SECURE_BOOT_PCR)) return;
  if (boot.secureBoot === 'required') secureBootOn(a);
  if (boot.forbidTestKeys) noTestKeys(a);
}

function isVariable(a: BootAppraisal, e: TcgEvent, guid: string, name: string): boolean {
  const d = a.details(e);
  return d.kind === 'uefi-variable' && d['guid'] === guid && d['name'] === name;
}

/**
 * Every SecureBoot variable event in PCR 7 holds 1, and there is one (BOOT_SECURE_BOOT_OFF);
 * one whose data is not bound to its digests is BOOT_EVENT_UNBOUND instead.
 */
function secureBootOn(a: BootAppraisal): void {
  const events = a.log.events
    .filter((e) => e.type === EV.EFI_VARIABLE_DRIVER_CONFIG && e.pcr === SECURE_BOOT_PCR)
    .filter((e) => isVariable(a, e, GUID.EFI_GLOBAL_VARIABLE, 'SecureBoot'));
  if (events.length === 0) a.add('BOOT_SECURE_BOOT_OFF', 'no SecureBoot variable is measured in PCR 7; policy requires Secure Boot');
  for (const e of events) {
    if (a.unbound(e, 'SecureBoot')) continue;
    const value = a.details(e)['value'];
    if (value !== 1) {
      a.add('BOOT_SECURE_BOOT_OFF', `${eventName(e)} SecureBoot is ${typeof value === 'number' ? value : 'not a single byte'}; policy requires 1`);
    }
  }
}

function isTestSubject(subject: unknown): subject is string {
  return typeof subject === 'string' && TEST_KEY_MARKERS.some((m) => subject.toLowerCase().includes(m));
}

/**
 * In PCR 7, in log order: no PK, KEK or db certificate, and no certificate that verified a
 * boot image, has a test subject (BOOT_TEST_KEY); a key variable or test authority whose data
 * is not bound to its digests is BOOT_EVENT_UNBOUND instead.
 */
function noTestKeys(a: BootAppraisal): void {
  for (const e of a.log.events) {
    if (e.pcr !== SECURE_BOOT_PCR) continue;
    if (e.type === EV.EFI_VARIABLE_DRIVER_CONFIG) {
      const key = KEY_VARIABLES.find((k) => isVariable(a, e, k.guid, k.name));
      if (key === undefined || a.unbound(e, key.name)) continue;
      const lists = a.details(e)['signatureLists'];
      for (const list of Array.isArray(lists) ? (lists as { entries?: { subject?: unknown }[] }[]) : []) {
        for (const entry of list.entries ?? []) {
          if (isTestSubject(entry.subject)) a.add('BOOT_TEST_KEY', `${eventName(e)} ${key.name} holds a test certificate: ${shown(entry.subject)}`);
        }
      }
    } else if (e.type === EV.EFI_VARIABLE_AUTHORITY) {
      const authority = a.details(e)['authority'] as { subject?: unknown } | undefined;
      if (isTestSubject(authority?.subject) && !a.unbound(e, 'authority')) {
        a.add('BOOT_TEST_KEY', `${eventName(e)} a boot image was verified by a test certificate: ${shown(authority.subject)}`);
      }
    }
  }
}
