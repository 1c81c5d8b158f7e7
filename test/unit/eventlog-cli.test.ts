// `attestctl tpm eventlog FILE [--json]`: the subcommand module on recorded logs.
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { tpmEventlog, TPM_EVENTLOG_HELP } from '../../daemon/cli/tpm-eventlog.js';
import { EXIT } from '../../daemon/cli/exit-codes.js';
import { EVENTLOG_DIR, TPM_DIR, gceQuotedPcrs } from './eventlog-helpers.js';

async function run(file: string | undefined, json: boolean): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
    out += String(s);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    err += String(s);
    return true;
  });
  const code = await tpmEventlog(file, json);
  vi.restoreAllMocks();
  return { code, out, err };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('attestctl tpm eventlog', () => {
  it('prints the events and the replayed PCRs as JSON', async () => {
    const { code, out } = await run(join(TPM_DIR, 'gce_cos85_nonce9009_eventlog.bin'), true);
    expect(code).toBe(EXIT.OK);
    const doc = JSON.parse(out) as {
      format: string;
      events: { index: number; type_name: string; details: { kind: string; text?: string } }[];
      pcrs: Record<string, Record<string, string>>;
    };
    expect(doc.format).toBe('crypto-agile');
    expect(doc.events[0]?.details.kind).toBe('spec-id');
    expect(doc.events.some((e) => e.details.text === 'Calling EFI Application from Boot Option')).toBe(true);
    const quoted = gceQuotedPcrs().find((b) => b.alg === 'sha384');
    expect(doc.pcrs.sha384?.['7']).toBe(quoted?.values.get(7)?.toString('hex'));
    expect(Object.keys(doc.pcrs)).toEqual(['sha1', 'sha256', 'sha384']);
  });

  it('prints one line per event and the PCRs as text', async () => {
    const { code, out } = await run(join(EVENTLOG_DIR, 'tpm2tools_event-sd-boot-fedora37.bin'), false);
    expect(code).toBe(EXIT.OK);
    expect(out).toMatch(/^.*tpm2tools_event-sd-boot-fedora37\.bin: crypto-agile log, 28 events, banks sha256, startup locality 0\n/);
    expect(out).toMatch(/#23 +PCR 12 EV_IPL +console=ttyS0 console=tty0 efi=debug/);
    expect(out).toContain('replayed PCRs:\n  sha256:\n');
    expect(out.split('\n').filter((l) => l.startsWith('  #'))).toHaveLength(28);
  });

  it('fails with the parser error on a bogus log, and on a missing file', async () => {
    const bogus = await run(join(EVENTLOG_DIR, 'keylime_binary_bios_measurements_BOGUS_invalid.bin'), false);
    expect(bogus.code).toBe(EXIT.FAILURE);
    expect(bogus.err).toMatch(/event 0 at offset 0x0: event size \d+ exceeds remaining 2 bytes/);
    const json = await run(join(EVENTLOG_DIR, 'keylime_binary_bios_measurements_BOGUS_invalid.bin'), true);
    expect(JSON.parse(json.out)).toMatchObject({ error: 'EVENTLOG_MALFORMED' });
    expect((await run(join(EVENTLOG_DIR, 'no-such-file.bin'), false)).code).toBe(EXIT.FAILURE);
  });

  it('asks for a file', async () => {
    const { code, err } = await run(undefined, false);
    expect(code).toBe(EXIT.USAGE);
    expect(err).toContain(TPM_EVENTLOG_HELP);
  });
});
