// Hostile and malformed TCG event logs: truncations, absurd sizes, bad Spec ID events,
// wrong digest lists, tampered digests, and the ordering warnings.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { EV, compareWithQuoted, parseEventLog, replay } from '../../daemon/verify/eventlog/index.js';
import {
  SHA1_SHA256, agileEvent, gceLog, gceQuotedPcrs, sha1Event, specIdData, specIdEvent,
} from './eventlog-helpers.js';

function errorOf(fn: () => unknown): AttestdError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AttestdError);
    return err as AttestdError;
  }
  throw new Error('expected a throw');
}

const sha1 = (b: Buffer): Buffer => createHash('sha1').update(b).digest();
const sha256 = (b: Buffer): Buffer => createHash('sha256').update(b).digest();
const both = (data: Buffer): { id: number; digest: Buffer }[] => [
  { id: 0x0004, digest: sha1(data) },
  { id: 0x000b, digest: sha256(data) },
];
const SEP = Buffer.alloc(4);

describe('truncation', () => {
  it('rejects a real log cut at every 97th byte unless the cut falls between events', () => {
    const full = gceLog();
    const log = parseEventLog(full);
    const ends = new Map(log.events.map((e, i) => [log.events[i + 1]?.offset ?? full.length, i + 1]));
    let rejected = 0;
    for (let cut = 97; cut < full.length; cut += 97) {
      const part = full.subarray(0, cut);
      const count = ends.get(cut);
      if (count !== undefined) {
        expect(parseEventLog(part).events).toHaveLength(count);
        continue;
      }
      const err = errorOf(() => parseEventLog(part));
      expect(err.code).toBe('EVENTLOG_MALFORMED');
      const inside = log.events.filter((e) => e.offset < cut).at(-1);
      expect(err.message).toMatch(new RegExp(`^event ${inside?.index} at offset 0x${inside?.offset.toString(16)}: `));
      rejected++;
    }
    expect(rejected).toBeGreaterThan(200);
  });
});

describe('bounds', () => {
  const head = specIdEvent(SHA1_SHA256);

  it('names the event and offset of an event size past the end', () => {
    const ev = agileEvent(0, EV.POST_CODE, both(SEP), SEP);
    ev.writeUInt32LE(0xffffffff, ev.length - 8);
    const err = errorOf(() => parseEventLog(Buffer.concat([head, ev])));
    expect(err.code).toBe('EVENTLOG_MALFORMED');
    expect(err.message).toBe(`event 1 at offset 0x${head.length.toString(16)}: event size 4294967295 exceeds remaining 4 bytes`);
  });

  it('refuses an event larger than the per-event limit', () => {
    const big = Buffer.alloc(4096);
    const bytes = Buffer.concat([head, agileEvent(0, EV.POST_CODE, both(big), big)]);
    expect(() => parseEventLog(bytes, { limits: { maxEventDataSize: 1024 } })).toThrow(/event size 4096 exceeds the limit of 1024 bytes/);
    expect(parseEventLog(bytes).events).toHaveLength(2);
  });

  it('refuses a log above the size limit before reading it', () => {
    expect(() => parseEventLog(new Uint8Array(16 * 1024 * 1024 + 1))).toThrow(/more than the 16777216 allowed/);
    expect(() => parseEventLog(new Uint8Array(0))).toThrow('event log is empty');
    expect(errorOf(() => parseEventLog('log' as unknown as Uint8Array)).code).toBe('INVALID_ARGUMENT');
  });

  it('refuses more events than the limit', () => {
    expect(() => parseEventLog(gceLog(), { limits: { maxEvents: 5 } })).toThrow(/^event 5 at offset 0x[0-9a-f]+: more than 5 events$/);
  });

  it('refuses an absurd algorithm count and digest count', () => {
    const spec = specIdData(SHA1_SHA256);
    spec.writeUInt32LE(0xffffffff, 24);
    expect(() => parseEventLog(sha1Event(0, EV.NO_ACTION, Buffer.alloc(20), spec))).toThrow(
      'event 0 at offset 0x0: Spec ID numberOfAlgorithms 4294967295 exceeds the limit of 16',
    );
    const ev = agileEvent(0, EV.POST_CODE, both(SEP), SEP);
    ev.writeUInt32LE(0xffffffff, 8);
    expect(() => parseEventLog(Buffer.concat([head, ev]))).toThrow(/^event 1 at offset 0x[0-9a-f]+: digest count 4294967295, the Spec ID event declares 2$/);
  });

  it('refuses an extend of a PCR that does not exist', () => {
    expect(() => parseEventLog(Buffer.concat([head, agileEvent(0xffffffff, EV.POST_CODE, both(SEP), SEP)]))).toThrow(/PCR index 4294967295 is not a PCR/);
  });
});

describe('the Spec ID event', () => {
  it('refuses an unknown algorithm that comes without a digest size', () => {
    const err = errorOf(() => parseEventLog(specIdEvent([{ id: 0x0004, size: 20 }, { id: 0x0099, size: 0 }])));
    expect(err.code).toBe('QUOTE_UNSUPPORTED_ALGORITHM');
    expect(err.message).toMatch(/unknown algorithm 0x0099 has digest size 0/);
  });

  it('keeps an unknown algorithm with a size, reports it and skips it in replay', () => {
    const algs = [{ id: 0x0004, size: 20 }, { id: 0x0012, size: 32 }];
    const ev = agileEvent(2, EV.POST_CODE, [{ id: 0x0004, digest: sha1(SEP) }, { id: 0x0012, digest: Buffer.alloc(32, 7) }], SEP);
    const log = parseEventLog(Buffer.concat([specIdEvent(algs), ev]));
    expect(log.algorithms).toEqual([{ id: 4, alg: 'sha1', digestSize: 20 }, { id: 0x12, alg: undefined, digestSize: 32 }]);
    expect(log.events[1]?.digests.get('0x0012')).toEqual(Buffer.alloc(32, 7));
    expect(log.warnings.map((w) => w.message)).toContain('algorithm 0x0012 (32-byte digests) is not supported and is not replayed');
    expect(replay(log).map((b) => b.alg)).toEqual(['sha1']);
  });

  it('refuses a known algorithm with the wrong size, duplicates, trailing bytes and a nonzero digest', () => {
    expect(() => parseEventLog(specIdEvent([{ id: 0x000b, size: 20 }]))).toThrow(/gives sha256 a digest size of 20, expected 32/);
    expect(() => parseEventLog(specIdEvent([{ id: 0x0004, size: 20 }, { id: 0x0004, size: 20 }]))).toThrow(/declares algorithm 0x0004 twice/);
    expect(() => parseEventLog(sha1Event(0, EV.NO_ACTION, Buffer.alloc(20), Buffer.concat([specIdData(SHA1_SHA256), Buffer.from([1])])))).toThrow(
      /Spec ID event has 1 trailing bytes/,
    );
    expect(() => parseEventLog(sha1Event(0, EV.NO_ACTION, Buffer.alloc(20, 1), specIdData(SHA1_SHA256)))).toThrow(/Spec ID event digest is not zero/);
    expect(() => parseEventLog(specIdEvent([]))).toThrow(/declares no digest algorithms/);
  });
});

describe('digest lists', () => {
  const head = specIdEvent(SHA1_SHA256);

  it('refuses too many, none, undeclared and repeated digests', () => {
    const three = [...both(SEP), { id: 0x000c, digest: Buffer.alloc(48) }];
    expect(() => parseEventLog(Buffer.concat([head, agileEvent(0, EV.SEPARATOR, three, SEP)]))).toThrow(/digest count 3, the Spec ID event declares 2/);
    expect(() => parseEventLog(Buffer.concat([head, agileEvent(0, EV.SEPARATOR, [], SEP)]))).toThrow(/digest count 0/);
    const undeclared = [{ id: 0x000c, digest: Buffer.alloc(48) }];
    expect(() => parseEventLog(Buffer.concat([head, agileEvent(0, EV.SEPARATOR, undeclared, SEP)]))).toThrow(
      /digest algorithm 0x000c is not declared in the Spec ID event/,
    );
    const twice = [{ id: 0x0004, digest: sha1(SEP) }, { id: 0x0004, digest: sha1(SEP) }];
    expect(() => parseEventLog(Buffer.concat([head, agileEvent(0, EV.SEPARATOR, twice, SEP)]))).toThrow(/digest algorithm 0x0004 appears twice/);
  });

  it('names the last event of a PCR whose digest was changed', () => {
    const bytes = Buffer.from(gceLog());
    const log = parseEventLog(bytes);
    const last = log.events.filter((e) => e.pcr === 4 && e.type !== EV.NO_ACTION).at(-1);
    if (!last) throw new Error('no PCR 4 event');
    // TCG_PCR_EVENT2: pcr, type, count, then (alg, digest) pairs; the GCE log lists sha1 first.
    const at = last.offset + 12 + 2 + 20;
    expect(bytes.readUInt16LE(at)).toBe(0x000b);
    bytes[at + 2] = (bytes[at + 2] ?? 0) ^ 0xff;
    const err = errorOf(() => compareWithQuoted(replay(parseEventLog(bytes)), gceQuotedPcrs()));
    expect(err.code).toBe('EVENTLOG_REPLAY_MISMATCH');
    expect(err.message).toMatch(new RegExp(`^sha256 PCR 4: .*; last extended by event ${last.index} \\(${last.typeName}\\)$`));
  });
});

describe('replay from first principles', () => {
  it('extends a SHA-1-format log from zero', () => {
    const a = Buffer.from('one');
    const b = Buffer.from('two');
    const log = parseEventLog(Buffer.concat([sha1Event(0, EV.POST_CODE, sha1(a), a), sha1Event(0, EV.POST_CODE, sha1(b), b), sha1Event(5, EV.SEPARATOR, sha1(SEP), SEP)]));
    expect(log.format).toBe('sha1');
    const p0 = sha1(Buffer.concat([sha1(Buffer.concat([Buffer.alloc(20), sha1(a)])), sha1(b)]));
    const [bank] = replay(log);
    expect(bank?.values.get(0)).toEqual(p0);
    expect(bank?.values.get(5)).toEqual(sha1(Buffer.concat([Buffer.alloc(20), sha1(SEP)])));
    expect([...(bank?.values.keys() ?? [])]).toEqual([0, 5]);
  });

  it('starts PCR 0 at the StartupLocality and does not extend NO_ACTION events', () => {
    const loc = Buffer.concat([Buffer.from('StartupLocality\0', 'latin1'), Buffer.from([4])]);
    const log = parseEventLog(Buffer.concat([
      specIdEvent(SHA1_SHA256),
      agileEvent(0, EV.NO_ACTION, [{ id: 4, digest: Buffer.alloc(20) }, { id: 11, digest: Buffer.alloc(32) }], loc),
      agileEvent(0, EV.POST_CODE, both(SEP), SEP),
    ]));
    expect(log.startupLocality).toBe(4);
    const start = Buffer.alloc(32);
    start[31] = 4;
    expect(replay(log)[1]?.values.get(0)).toEqual(sha256(Buffer.concat([start, sha256(SEP)])));
  });

  it('refuses a StartupLocality event outside PCR 0, repeated, or after PCR 0 was extended', () => {
    const loc = Buffer.concat([Buffer.from('StartupLocality\0', 'latin1'), Buffer.from([3])]);
    const na = (pcr: number): Buffer => agileEvent(pcr, EV.NO_ACTION, both(Buffer.alloc(0)), loc);
    const head = specIdEvent(SHA1_SHA256);
    expect(() => parseEventLog(Buffer.concat([head, na(3)]))).toThrow(/StartupLocality event is in PCR 3/);
    expect(() => parseEventLog(Buffer.concat([head, na(0), na(0)]))).toThrow(/a second StartupLocality event/);
    expect(() => parseEventLog(Buffer.concat([head, agileEvent(0, EV.POST_CODE, both(SEP), SEP), na(0)]))).toThrow(/after PCR 0 was extended/);
  });
});

describe('warnings and undecodable data', () => {
  it('warns about events after a separator, an error separator and a second separator', () => {
    const err = Buffer.from([1, 0, 0, 0]);
    const log = parseEventLog(Buffer.concat([
      specIdEvent(SHA1_SHA256),
      agileEvent(0, EV.SEPARATOR, both(SEP), SEP),
      agileEvent(0, EV.POST_CODE, both(SEP), Buffer.from('ACPI DATA')),
      agileEvent(4, EV.SEPARATOR, both(err), err),
      agileEvent(4, EV.EFI_BOOT_SERVICES_APPLICATION, both(SEP), SEP),
      agileEvent(4, EV.SEPARATOR, both(SEP), SEP),
    ]));
    expect(log.events[2]?.details).toEqual({ kind: 'post-code', text: 'ACPI DATA' });
    expect(log.events[3]?.details).toEqual({ kind: 'separator', value: 1, error: true });
    expect(log.warnings).toEqual([
      { event: 3, message: 'error separator (0x00000001) in PCR 4' },
      { event: 2, message: 'event after separator in PCR 0 (EV_POST_CODE)' },
      { event: 5, message: 'second separator in PCR 4' },
    ]);
  });

  it('keeps parsing when an event body does not decode', () => {
    const bogus = Buffer.alloc(40, 0xff);
    const log = parseEventLog(Buffer.concat([specIdEvent(SHA1_SHA256), agileEvent(7, EV.EFI_VARIABLE_DRIVER_CONFIG, both(bogus), bogus)]));
    expect(log.events[1]?.details).toMatchObject({ kind: 'undecodable', hex: bogus.toString('hex') });
    expect(String(log.events[1]?.details?.reason)).toMatch(/UnicodeNameLength 18446744073709551615 exceeds remaining 16 bytes/);
    expect(log.events[1]?.typeName).toBe('EV_EFI_VARIABLE_DRIVER_CONFIG');
  });

  it('names unknown event types by number', () => {
    const log = parseEventLog(sha1Event(1, 0x1234, sha1(SEP), SEP));
    expect(log.events[0]).toMatchObject({ typeName: 'EV_UNKNOWN_0x00001234', details: { kind: 'raw', hex: '00000000' } });
  });
});
