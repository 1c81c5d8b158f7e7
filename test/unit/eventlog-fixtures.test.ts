// Recorded TCG PC Client event logs (shared/fixtures/tcg-eventlog and tpm/, provenance in
// SOURCES.md) parse, decode and replay to the PCR values their sources assert.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { AttestdError } from '../../daemon/base/errors.js';
import {
  checkAgainstQuoted, compareWithQuoted, digestsMatchData, parseEventLog, replay, type EventLog, type TcgEvent,
} from '../../daemon/verify/eventlog/index.js';
import type { PcrBank } from '../../daemon/verify/pcr.js';
import { EVENTLOG_DIR, banksFromJson, eventlogFixture, gceLog, gceQuotedPcrs, pcClientLogs } from './eventlog-helpers.js';

interface ExpectedJson {
  format: string;
  startup_locality: number | null;
  upstream_expected?: { pcrs: Record<string, Record<string, string>> };
  replayed_pcrs_computed_by_collector: Record<string, Record<string, string>>;
}

function expectReplaysTo(log: EventLog, expected: PcrBank[]): void {
  const banks = replay(log);
  let checked = 0;
  for (const exp of expected) {
    const bank = banks.find((b) => b.alg === exp.alg);
    expect(bank, `bank ${exp.alg}`).toBeDefined();
    for (const [pcr, value] of exp.values) {
      expect(bank?.values.get(pcr)?.toString('hex'), `${exp.alg} PCR ${pcr}`).toBe(value.toString('hex'));
      checked++;
    }
  }
  if (expected.length > 0) expect(checked).toBeGreaterThan(0);
}

function find(log: EventLog, pred: (e: TcgEvent) => boolean): TcgEvent {
  const e = log.events.find(pred);
  if (!e) throw new Error('no such event');
  return e;
}

const withExpected = pcClientLogs().filter((f) => existsSync(join(EVENTLOG_DIR, f.replace(/\.bin$/, '.expected_pcrs.json'))));

describe('recorded logs replay to their expected PCRs', () => {
  it('covers the logs the sources describe', () => {
    expect(withExpected.length).toBeGreaterThanOrEqual(29);
  });

  it.each(withExpected)('%s', (file) => {
    const json = JSON.parse(readFileSync(join(EVENTLOG_DIR, file.replace(/\.bin$/, '.expected_pcrs.json')), 'utf8')) as ExpectedJson;
    const log = parseEventLog(eventlogFixture(file));
    expect(log.format).toBe(json.format === 'sha1-legacy' ? 'sha1' : 'crypto-agile');
    if (log.format === 'crypto-agile') expect(log.startupLocality).toBe(json.startup_locality ?? 0);
    expectReplaysTo(log, banksFromJson(json.upstream_expected?.pcrs ?? json.replayed_pcrs_computed_by_collector));
  });

  it('starts PCR 0 at locality 3 where the log says so', () => {
    for (const file of ['gotpmtools_glinux-alex.bin', 'gotpmtools_gdc-host.bin']) {
      const log = parseEventLog(eventlogFixture(file));
      expect(log.startupLocality).toBe(3);
      // Sanity of the check itself: replaying from zero would not match the upstream values.
      const fromZero = replay({ ...log, startupLocality: 0 });
      const fromThree = replay(log);
      expect(fromZero[0]?.values.get(0)?.equals(fromThree[0]?.values.get(0) ?? Buffer.alloc(0))).toBe(false);
    }
  });

  const yamlLogs = pcClientLogs().filter((f) => existsSync(join(EVENTLOG_DIR, `${f}.expected.yaml`)));
  it.each(yamlLogs)('%s matches the pcrs of tpm2_eventlog', (file) => {
    const doc = parseYaml(readFileSync(join(EVENTLOG_DIR, `${file}.expected.yaml`), 'utf8'), { schema: 'failsafe', uniqueKeys: false }) as { pcrs: Record<string, Record<string, string>> };
    const expected = Object.entries(doc.pcrs).map(([alg, values]) => ({
      alg: alg as PcrBank['alg'],
      values: new Map(Object.entries(values).map(([i, v]) => [Number(i), Buffer.from(String(v).trim().replace(/^0x/, ''), 'hex')])),
    }));
    expect(expected.length).toBeGreaterThan(0);
    expectReplaysTo(parseEventLog(eventlogFixture(file)), expected);
  });

  it('parses keylime mb_log (base64) to 102 events covering PCRs 0-9 and 14', () => {
    const bytes = Buffer.from(eventlogFixture('keylime_mb_log.b64').toString('ascii'), 'base64');
    const log = parseEventLog(bytes);
    expect(log.events).toHaveLength(102);
    const sha256 = replay(log).find((b) => b.alg === 'sha256');
    expect([...(sha256?.values.keys() ?? [])].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14]);
  });
});

describe('edge-case and bogus logs', () => {
  it('rejects the keylime bogus file with an event and offset', () => {
    expect(() => parseEventLog(eventlogFixture('keylime_binary_bios_measurements_BOGUS_invalid.bin'))).toThrow(
      /^event 0 at offset 0x0: event size \d+ exceeds remaining 2 bytes$/,
    );
  });

  it('accepts the short NO_ACTION log as one StartupLocality event, not a Spec ID', () => {
    const log = parseEventLog(eventlogFixture('goattestation_short_no_action_eventlog.bin'));
    expect(log.format).toBe('sha1');
    expect(log.events).toHaveLength(1);
    expect(log.events[0]?.details).toEqual({ kind: 'startup-locality', locality: 3 });
    expect(log.startupLocality).toBe(0);
    expect(log.warnings.map((w) => w.message)).toContain('StartupLocality 3 in a SHA-1-format log is not applied');
    expect(replay(log)[0]?.values.size).toBe(0);
  });

  it('rejects a Spec ID event whose vendorInfo overruns its event size', () => {
    expect(() => parseEventLog(eventlogFixture('tpm2tools_specid-vendordata.bin'))).toThrow(
      'event 0 at offset 0x0: Spec ID vendorInfo needs 4 bytes, 0 left',
    );
  });

  it('reports banks a tpm2-tools log declares but does not carry, and replays the rest', () => {
    const log = parseEventLog(eventlogFixture('tpm2tools_event-uefivar.bin'));
    expect(log.algorithms.map((a) => a.alg)).toEqual(['sha1', 'sha256', 'sha384', 'sha512']);
    expect(replay(log).map((b) => b.alg)).toEqual(['sha1', 'sha256']);
    expect(log.warnings.map((w) => w.message)).toContain('1 event(s) carry no sha384 digest, so the sha384 bank is not replayed');
  });
});

describe('decoded details', () => {
  it('decodes the SecureBoot variable as tpm2_eventlog does', () => {
    const e = parseEventLog(eventlogFixture('tpm2tools_event-uefivar.bin')).events[1];
    expect(e?.typeName).toBe('EV_EFI_VARIABLE_DRIVER_CONFIG');
    expect(e?.details).toMatchObject({ kind: 'uefi-variable', guid: '8be4df61-93ca-11d2-aa0d-00e098032b8c', name: 'SecureBoot', value: 1 });
    expect(e && digestsMatchData(e)).toBe(true);
  });

  it('decodes an EFI action and separators', () => {
    const log = parseEventLog(eventlogFixture('gotpmtools_ubuntu-2104-no-secure-boot.bin'));
    expect(log.events[14]?.details).toEqual({ kind: 'action', text: 'Calling EFI Application from Boot Option' });
    expect(log.events[15]).toMatchObject({ pcr: 0, typeName: 'EV_SEPARATOR', details: { kind: 'separator', value: 0, error: false } });
    expect(log.events[3]?.details).toMatchObject({ name: 'SecureBoot', value: 0 });
    // Separator data is what was hashed; an image load event only describes the image.
    expect(digestsMatchData(log.events[15] as TcgEvent)).toBe(true);
    const app = find(log, (e) => e.typeName === 'EV_EFI_BOOT_SERVICES_APPLICATION');
    expect(digestsMatchData(app)).toBe(false);
  });

  it('decodes the UTF-16 kernel command line systemd-boot measures', () => {
    const log = parseEventLog(eventlogFixture('tpm2tools_event-sd-boot-fedora37.bin'));
    expect(log.events[23]).toMatchObject({ pcr: 12, typeName: 'EV_IPL' });
    expect(log.events[23]?.details).toEqual({ kind: 'ipl', encoding: 'utf-16le', text: ' console=ttyS0 console=tty0 efi=debug ' });
  });

  it('decodes grub kernel command lines and db certificates', () => {
    const log = parseEventLog(eventlogFixture('gotpmtools_ubuntu-2104-no-secure-boot.bin'));
    const ipl = find(log, (e) => typeof e.details?.text === 'string' && e.details.text.startsWith('kernel_cmdline:'));
    expect(ipl.details?.text).toBe('kernel_cmdline: /boot/vmlinuz-5.11.0-1006-gcp root=PARTUUID=6443a6ae-e5e9-4df7-9a06-d1329e50f33c ro console=ttyS0 panic=-1');
    const db = find(log, (e) => e.details?.name === 'db');
    const lists = db.details?.signatureLists as { typeName: string; count: number; entries: { subject?: string }[] }[];
    expect(lists[0]).toMatchObject({ typeName: 'CERT_X509', count: 1 });
    expect(lists[0]?.entries[0]?.subject).toContain('CN=Microsoft Corporation UEFI CA 2011');
  });

  it('decodes image loads, GPT, firmware blobs and shim authorities', () => {
    const log = parseEventLog(eventlogFixture('rustkeylime_uefi_log.bin'));
    expect(log.events[46]?.details).toMatchObject({
      kind: 'uefi-image-load', devicePathLength: 138,
      devicePath: 'PciRoot(0x0)/Pci(0x2,0x4)/Pci(0x0,0x0)/NVMe(0x1,002538b941b131c0)/HD(1,GPT,5c79c822-f5f7-4a93-a562-08c6c424c05a,0x800,0x12c000)/\\EFI\\fedora\\shimx64.efi',
    });
    expect(log.events[45]?.details).toMatchObject({ kind: 'uefi-gpt', signature: 'EFI PART', partitionCount: 3 });
    expect(log.events[2]?.details).toEqual({ kind: 'uefi-firmware-blob', base: '0x9b00000', length: '0x300000' });
    expect(log.events[49]?.details).toMatchObject({ name: 'SbatLevel', authority: { text: 'sbat,1,2021030218\n' } });
    expect(log.events[1]?.details).toEqual({ kind: 's-crtm-version', text: 'N3VET59W ' });
    expect(log.events[23]?.details?.loadOption).toMatchObject({ description: 'Fedora' });
  });

  it('names SP800-155 NO_ACTION events', () => {
    const log = parseEventLog(eventlogFixture('gotpmtools_eventlogwithsp800155.bin'));
    expect(log.events.some((e) => e.details?.kind === 'no-action' && String(e.details.signature).startsWith('SP800-155'))).toBe(true);
  });
});

describe('the GCE COS 85 log against its quoted PCRs', () => {
  it('replays PCR 0-9 exactly in all three banks', () => {
    const log = parseEventLog(gceLog());
    const quoted = gceQuotedPcrs();
    const banks = replay(log);
    expect(banks.map((b) => b.alg)).toEqual(['sha1', 'sha256', 'sha384']);
    for (const b of banks) {
      for (let pcr = 0; pcr <= 9; pcr++) {
        expect(b.values.get(pcr)?.toString('hex')).toBe(quoted.find((q) => q.alg === b.alg)?.values.get(pcr)?.toString('hex'));
      }
    }
    expect(() => compareWithQuoted(banks, quoted)).not.toThrow();
    expect(checkAgainstQuoted(banks, quoted)).toEqual([]);
  });

  it('rejects a quote with one PCR changed, naming the PCR, bank and last event', () => {
    const banks = replay(parseEventLog(gceLog()));
    const quoted = gceQuotedPcrs();
    const sha256 = quoted.find((q) => q.alg === 'sha256');
    const v = Buffer.from(sha256?.values.get(4) ?? Buffer.alloc(32));
    v[0] = (v[0] ?? 0) ^ 1;
    sha256?.values.set(4, v);
    let err: unknown;
    try {
      compareWithQuoted(banks, quoted);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AttestdError);
    expect((err as AttestdError).code).toBe('EVENTLOG_REPLAY_MISMATCH');
    expect((err as AttestdError).message).toMatch(/^sha256 PCR 4: the event log replays to [0-9a-f]{64}, the quote has [0-9a-f]{64}; last extended by event \d+ \(EV_EFI_BOOT_SERVICES_APPLICATION\)$/);
    const reasons = checkAgainstQuoted(banks, quoted);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]?.code).toBe('EVENTLOG_REPLAY_MISMATCH');
  });

  it('flags a quoted PCR the log has no event for unless told to skip it', () => {
    const banks = replay(parseEventLog(gceLog()));
    const quoted = gceQuotedPcrs();
    expect(checkAgainstQuoted(banks, quoted, [10]).map((r) => r.message)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^sha1 PCR 10: the quote has [0-9a-f]+ but the event log has no event for it$/)]),
    );
    expect(checkAgainstQuoted(banks, quoted, [10], { untouched: 'skip' })).toEqual([]);
    expect(checkAgainstQuoted(banks, quoted, [14])).toEqual([]);
  });

  it('treats a quote sharing no bank with the log as a mismatch', () => {
    const banks = replay(parseEventLog(gceLog())).filter((b) => b.alg === 'sha1');
    const quoted = gceQuotedPcrs().filter((q) => q.alg === 'sha384');
    expect(() => compareWithQuoted(banks, quoted)).toThrow(/share no PCR bank/);
  });
});
