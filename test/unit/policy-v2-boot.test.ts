// appraiseBoot on recorded TCG event logs (shared/fixtures/tcg-eventlog, provenance in
// SOURCES.md) with the PCRs their platforms reported, and on small synthetic logs for what
// no recording shows (test keys, unbound data, systemd-stub command lines).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_PCRS, appraiseBoot } from '../../daemon/policy/appraise-boot.js';
import type { BootPolicy, PcrBank } from '../../daemon/policy/types.js';
import { EV, parseEventLog, replay } from '../../daemon/verify/eventlog/index.js';
import type { EventLog } from '../../daemon/verify/eventlog/index.js';
import { EVENTLOG_DIR, SHA1_SHA256, agileEvent, banksFromJson, eventlogFixture, specIdEvent } from './eventlog-helpers.js';

function fixture(name: string): { log: EventLog; quoted: PcrBank[] } {
  const json = JSON.parse(readFileSync(join(EVENTLOG_DIR, name.replace(/\.bin$/, '.expected_pcrs.json')), 'utf8')) as {
    replayed_pcrs_computed_by_collector: Record<string, Record<string, string>>;
    upstream_expected?: { pcrs: Record<string, Record<string, string>> };
  };
  // Prefer the PCRs the platform itself reported (go-tpm-tools' tests read them from a TPM).
  return { log: parseEventLog(eventlogFixture(name)), quoted: banksFromJson(json.upstream_expected?.pcrs ?? json.replayed_pcrs_computed_by_collector) };
}

const lenient: BootPolicy = { eventLog: '/x', bank: 'sha256', secureBoot: 'any', forbidTestKeys: false, allowAfterSeparator: [] };
const codes = (reasons: { code: string }[]): string[] => reasons.map((r) => r.code);

/** The boot policy an operator writes from a known-good host's log. */
function policyFrom(log: EventLog): BootPolicy {
  const apps = log.events.filter((e) => e.type === EV.EFI_BOOT_SERVICES_APPLICATION).map((e) => e.digests.get('sha256') as Buffer);
  return {
    eventLog: '/sys/kernel/security/tpm0/binary_bios_measurements',
    bank: 'sha256',
    secureBoot: 'required',
    forbidTestKeys: true,
    bootApplications: [{ alg: 'sha256', allowed: apps }],
    kernelCmdline: { require: ['security=apparmor', 'ro '], forbid: ['init=/bin/sh', 'module.sig_enforce=0'] },
    allowAfterSeparator: [],
  };
}

describe('appraiseBoot on a recorded COS 101 boot (Secure Boot on)', () => {
  const { log, quoted } = fixture('gotpmtools_cos-101-amd-sev.bin');
  const good = policyFrom(log);

  it('passes the policy written from its own log', () => {
    expect(appraiseBoot(good, log, quoted)).toEqual([]);
  });

  it('names the boot application that is not allowed, by event, path and digest', () => {
    const allowed = good.bootApplications?.[0]?.allowed.filter((d) => d.toString('hex') !== 'c7ac5d44444affd8d4a7c5d3dea0ce20a71e05812fc18777a428d092f78ae3ff') ?? [];
    const reasons = appraiseBoot({ ...good, bootApplications: [{ alg: 'sha256', allowed }] }, log, quoted);
    expect(codes(reasons)).toEqual(['BOOT_APPLICATION_NOT_ALLOWED']);
    expect(reasons[0]?.message).toMatch(/^PCR 4 event 22 \(EV_EFI_BOOT_SERVICES_APPLICATION\) PciRoot\(0x0\)\/.* digest sha256:c7ac5d44444affd8d4a7c5d3dea0ce20a71e05812fc18777a428d092f78ae3ff is not in the allowed set$/);
  });

  it('an allowed list in a bank the events do not carry allows nothing', () => {
    const reasons = appraiseBoot({ ...good, bootApplications: [{ alg: 'sha512', allowed: [Buffer.alloc(64)] }] }, log, quoted);
    expect(codes(reasons)).toEqual(Array(4).fill('BOOT_APPLICATION_NOT_ALLOWED'));
    expect(reasons[0]?.message).toMatch(/event 22 .* carries no sha512 digest$/);
  });

  it('names the command line that lacks a required or holds a forbidden substring', () => {
    const reasons = appraiseBoot({ ...good, kernelCmdline: { require: ['lockdown=integrity'], forbid: ['security=apparmor'] } }, log, quoted);
    expect(codes(reasons)).toEqual(['BOOT_CMDLINE_MISSING', 'BOOT_CMDLINE_FORBIDDEN']);
    expect(reasons[0]?.message).toMatch(/^PCR 8 event 46 \(EV_IPL\) kernel command line lacks "lockdown=integrity": \/syslinux\/vmlinuz.A init=/);
    expect(reasons[1]?.message).toMatch(/^PCR 8 event 46 \(EV_IPL\) kernel command line contains "security=apparmor": /);
  });

  it('a log that does not replay to the quote gives only the mismatch, whatever else is wrong', () => {
    const tampered = quoted.map((b) => ({ alg: b.alg, values: new Map(b.values) }));
    tampered.find((b) => b.alg === 'sha256')?.values.set(4, Buffer.alloc(32, 0x3f));
    const reasons = appraiseBoot({ ...good, bootApplications: [{ alg: 'sha256', allowed: [] }] }, log, tampered);
    expect(codes(reasons)).toEqual(['EVENTLOG_REPLAY_MISMATCH']);
    expect(reasons[0]?.message).toMatch(/^sha256 PCR 4: the event log replays to [0-9a-f]{64}, the quote has 3f3f.*; last extended by event 45 \(EV_EFI_BOOT_SERVICES_APPLICATION\)$/);
  });

  it('events in PCRs the quote does not cover are not evidence', () => {
    const partial = quoted.map((b) => ({ alg: b.alg, values: new Map([...b.values].filter(([i]) => i !== 7 && i !== 8)) }));
    const reasons = appraiseBoot(good, log, partial);
    expect(reasons.map((r) => r.message)).toEqual([
      'PCR 7 was not quoted in a bank the event log replays, so its events are not evidence',
      'PCR 8 was not quoted in a bank the event log replays, so its events are not evidence',
      'no kernel command line is measured in the event log; policy requires one',
    ]);
  });

  it('the boot PCRs are those the collector is asked to quote', () => {
    expect(BOOT_PCRS).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 14]);
  });
});

describe('appraiseBoot on other recorded boots', () => {
  it('Secure Boot off is named by its event', () => {
    const { log, quoted } = fixture('gotpmtools_ubuntu-2104-no-secure-boot.bin');
    const reasons = appraiseBoot({ ...lenient, secureBoot: 'required' }, log, quoted);
    expect(reasons).toEqual([{ code: 'BOOT_SECURE_BOOT_OFF', message: 'PCR 7 event 3 (EV_EFI_VARIABLE_DRIVER_CONFIG) SecureBoot is 0; policy requires 1' }]);
    expect(appraiseBoot(lenient, log, quoted)).toEqual([]);
  });

  it('events after the separator in PCRs 0-7 are reasons unless their type is tolerated', () => {
    const { log, quoted } = fixture('keylime_binary_bios_measurements.bin');
    expect(appraiseBoot(lenient, log, quoted)).toEqual([
      { code: 'BOOT_EVENT_AFTER_SEPARATOR', message: 'PCR 1 event 49 (EV_EFI_HANDOFF_TABLES) comes after the separator in PCR 1' },
      { code: 'BOOT_EVENT_AFTER_SEPARATOR', message: 'PCR 1 event 50 (EV_PLATFORM_CONFIG_FLAGS) comes after the separator in PCR 1' },
    ]);
    const tolerant = { ...lenient, allowAfterSeparator: ['EV_EFI_HANDOFF_TABLES', 'EV_PLATFORM_CONFIG_FLAGS'] };
    expect(appraiseBoot(tolerant, log, quoted)).toEqual([]);
  });

  it('a required command line in a log without one', () => {
    const { log, quoted } = fixture('gotpmtools_glinux-alex.bin');
    const reasons = appraiseBoot({ ...lenient, kernelCmdline: { require: ['ro'], forbid: [] }, allowAfterSeparator: ['EV_EFI_VARIABLE_BOOT'] }, log, quoted);
    expect(codes(reasons)).toEqual(['BOOT_CMDLINE_NOT_MEASURED']);
  });
});

// ---- synthetic logs --------------------------------------------------------------------

const u32 = (n: number): Buffer => Buffer.from(Uint32Array.of(n).buffer);
const u64 = (n: number): Buffer => Buffer.concat([u32(n), u32(0)]);

function guidBytes(guid: string): Buffer {
  const [a, b, c, d, e] = guid.split('-') as [string, string, string, string, string];
  const out = Buffer.alloc(16);
  out.writeUInt32LE(parseInt(a, 16), 0);
  out.writeUInt16LE(parseInt(b, 16), 4);
  out.writeUInt16LE(parseInt(c, 16), 6);
  Buffer.from(d + e, 'hex').copy(out, 8);
  return out;
}

const GLOBAL = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
const CERT_X509 = 'a5c059a1-94e4-4aa7-87b5-ab155c2bf072';

function variable(guid: string, name: string, value: Buffer): Buffer {
  const nameBytes = Buffer.from(name, 'utf16le');
  return Buffer.concat([guidBytes(guid), u64(name.length), u64(value.length), nameBytes, value]);
}

function x509List(der: Buffer): Buffer {
  const entry = Buffer.concat([guidBytes('77fa9abd-0359-4d32-bd60-28f4e78f784b'), der]);
  return Buffer.concat([guidBytes(CERT_X509), u32(28 + entry.length), u32(0), u32(entry.length), entry]);
}

/** An event whose digests are of `measured` (its data, unless said otherwise). */
function event(pcr: number, type: number, data: Buffer, measured: Buffer = data): Buffer {
  return agileEvent(pcr, type, [
    { id: 0x0004, digest: createHash('sha1').update(measured).digest() },
    { id: 0x000b, digest: createHash('sha256').update(measured).digest() },
  ], data);
}

function logOf(...events: Buffer[]): { log: EventLog; quoted: PcrBank[] } {
  const log = parseEventLog(Buffer.concat([specIdEvent(SHA1_SHA256), ...events]));
  return { log, quoted: replay(log) };
}

const separator = (pcr: number, value = 0): Buffer => event(pcr, EV.SEPARATOR, u32(value));
const secureBootOn = (): Buffer => event(7, EV.EFI_VARIABLE_DRIVER_CONFIG, variable(GLOBAL, 'SecureBoot', Buffer.from([1])));

describe('appraiseBoot on synthetic logs', () => {
  let testPk: Buffer;
  let realPk: Buffer;
  let dir = '';
  // Self-signed certificates made by an independent tool, with the subjects firmware uses.
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'attestd-boot-'));
    const make = (subject: string, file: string): Buffer => {
      const out = join(dir, file);
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, `${file}.key`),
        '-subj', subject, '-days', '3650', '-outform', 'DER', '-out', out], { stdio: 'ignore' });
      return readFileSync(out);
    };
    testPk = make('/CN=DO NOT TRUST - AMI Test PK', 'test.der');
    realPk = make('/CN=Example Corp Platform Key 2024', 'real.der');
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const strict: BootPolicy = { ...lenient, secureBoot: 'required', forbidTestKeys: true };

  it('forbid_test_keys names the PK holding a test certificate', () => {
    const { log, quoted } = logOf(secureBootOn(), event(7, EV.EFI_VARIABLE_DRIVER_CONFIG, variable(GLOBAL, 'PK', x509List(testPk))), separator(7));
    expect(appraiseBoot(strict, log, quoted)).toEqual([
      { code: 'BOOT_TEST_KEY', message: 'PCR 7 event 2 (EV_EFI_VARIABLE_DRIVER_CONFIG) PK holds a test certificate: CN=DO NOT TRUST - AMI Test PK' },
    ]);
    expect(appraiseBoot({ ...strict, forbidTestKeys: false }, log, quoted)).toEqual([]);
    const real = logOf(secureBootOn(), event(7, EV.EFI_VARIABLE_DRIVER_CONFIG, variable(GLOBAL, 'PK', x509List(realPk))), separator(7));
    expect(appraiseBoot(strict, real.log, real.quoted)).toEqual([]);
  });

  it('variable data that its digests do not commit to is not trusted', () => {
    const forged = event(7, EV.EFI_VARIABLE_DRIVER_CONFIG, variable(GLOBAL, 'SecureBoot', Buffer.from([1])), variable(GLOBAL, 'SecureBoot', Buffer.from([0])));
    const { log, quoted } = logOf(forged, separator(7));
    expect(appraiseBoot(strict, log, quoted)).toEqual([
      { code: 'BOOT_EVENT_UNBOUND', message: 'PCR 7 event 1 (EV_EFI_VARIABLE_DRIVER_CONFIG) SecureBoot: the event data does not hash to its digests, so it cannot be trusted' },
    ]);
  });

  it('no SecureBoot event at all fails a secure_boot: required policy', () => {
    const { log, quoted } = logOf(separator(7));
    expect(codes(appraiseBoot(strict, log, quoted))).toEqual(['BOOT_SECURE_BOOT_OFF']);
  });

  it('grub command lines count only when their text is what was measured', () => {
    const line = 'kernel_cmdline: /vmlinuz root=/dev/sda1 ro lockdown=integrity';
    const bound = event(8, EV.IPL, Buffer.from(line), Buffer.from(line.slice('kernel_cmdline: '.length)));
    const forged = event(8, EV.IPL, Buffer.from(line), Buffer.from('/vmlinuz root=/dev/sda1 ro init=/bin/sh'));
    const policy: BootPolicy = { ...lenient, kernelCmdline: { require: ['lockdown=integrity'], forbid: ['init=/bin/sh'] } };
    const ok = logOf(bound);
    expect(appraiseBoot(policy, ok.log, ok.quoted)).toEqual([]);
    const bad = logOf(forged);
    expect(appraiseBoot(policy, bad.log, bad.quoted)).toEqual([
      { code: 'BOOT_CMDLINE_UNBOUND', message: "PCR 8 event 1 (EV_IPL) command line does not hash to the event's digests, so it cannot be checked" },
    ]);
  });

  it("systemd-stub's UTF-16 command line in PCR 12 is checked", () => {
    const stub = event(12, EV.IPL, Buffer.from('console=ttyS0 init=/bin/sh\0', 'utf16le'));
    const { log, quoted } = logOf(stub);
    const reasons = appraiseBoot({ ...lenient, kernelCmdline: { require: [], forbid: ['init=/bin/sh'] } }, log, quoted);
    expect(reasons).toEqual([{ code: 'BOOT_CMDLINE_FORBIDDEN', message: 'PCR 12 event 1 (EV_IPL) kernel command line contains "init=/bin/sh": console=ttyS0 init=/bin/sh' }]);
  });

  it('an error separator and a second separator are reasons', () => {
    const { log, quoted } = logOf(separator(0, 1), separator(1), separator(1));
    expect(appraiseBoot(lenient, log, quoted)).toEqual([
      { code: 'BOOT_EVENT_AFTER_SEPARATOR', message: 'PCR 1 event 3 (EV_SEPARATOR) is a second separator' },
      { code: 'BOOT_ERROR_SEPARATOR', message: 'PCR 0 event 1 (EV_SEPARATOR) is an error separator: the firmware reported a pre-boot failure' },
    ]);
  });

  it('the same input gives the same reasons', () => {
    const { log, quoted } = logOf(separator(0, 1), event(7, EV.EFI_VARIABLE_DRIVER_CONFIG, variable(GLOBAL, 'SecureBoot', Buffer.from([0]))));
    expect(appraiseBoot(strict, log, quoted)).toEqual(appraiseBoot(strict, log, quoted));
  });
});
