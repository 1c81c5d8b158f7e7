import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AttestdError } from '../../daemon/base/errors.js';
import { checkReplayMatches, parseCcel, replayRtmrs } from '../../daemon/verify/tdx/ccel.js';
import { appraiseTdxQuote } from '../../daemon/verify/tdx/verify.js';
import { parseTdxQuote } from '../../daemon/verify/tdx/quote.js';
import { CCEL_DIR, tdxFixture } from './tdx-helpers.js';

const LOGS = ['ccel_gotdxguest_cos113_ccel_data', 'ccel_trustee_data', 'ccel_trustee_data_csv', 'ccel_trustee_data_gcp', 'ccel_trustee_data_grub', 'ccel_trustee_data_grub_gke'];
const log = (n: string): Buffer => readFileSync(join(CCEL_DIR, `${n}.bin`));
const expected = (n: string): { event_count: number; regs: Record<string, string> } => {
  const j = JSON.parse(readFileSync(join(CCEL_DIR, `${n}.expected_rtmrs.json`), 'utf8')) as {
    event_count: number; replayed_measurement_registers_computed_by_collector: Record<string, Record<string, string>>;
  };
  return { event_count: j.event_count, regs: Object.values(j.replayed_measurement_registers_computed_by_collector)[0]! };
};

describe('CC event log replay', () => {
  it.each(LOGS)('%s replays to its expected RTMRs', (n) => {
    const parsed = parseCcel(log(n));
    // The expected event count includes the Spec ID header event.
    expect(parsed.events.length + 1).toBe(expected(n).event_count);
    const r = replayRtmrs(parsed);
    const regs = expected(n).regs;
    for (let i = 0; i < 4; i++) {
      const want = regs[`RTMR${i}`] ?? Buffer.alloc(r.rtmrs[i]!.length).toString('hex');
      expect(r.rtmrs[i]!.toString('hex'), `RTMR${i}`).toBe(want);
    }
  });

  it('uses SM3 for the Hygon CSV log that carries no SHA-384', () => {
    expect(replayRtmrs(parseCcel(log('ccel_trustee_data_csv'))).alg).toBe('sm3');
  });

  it('a changed digest byte breaks the replay and the mismatch names the event', () => {
    const bytes = Buffer.from(log('ccel_gotdxguest_cos113_ccel_data'));
    const good = replayRtmrs(parseCcel(bytes));
    const victim = parseCcel(bytes).events.find((e) => e.mrIndex === 2 && e.eventType !== 3)!;
    // Event layout: MR index (4), type (4), digest count (4), alg id (2), digest...
    bytes[victim.offset + 14]! ^= 0x01;
    const bad = replayRtmrs(parseCcel(bytes));
    expect(bad.rtmrs[1]!.equals(good.rtmrs[1]!)).toBe(false);
    expect(() => checkReplayMatches(bad, good.rtmrs)).toThrow(expect.objectContaining({ code: 'CCEL_REPLAY_MISMATCH', message: expect.stringMatching(/RTMR1 .*event \d+/) }));
    expect(() => checkReplayMatches(good, good.rtmrs)).not.toThrow();
  });

  it('a log from another boot does not replay to the quote RTMRs (trustee quote + trustee CCEL)', () => {
    const quote = tdxFixture('trustee_quote_v4_fmspc50806f.dat');
    const a = appraiseTdxQuote(quote, [], { at: new Date('2023-06-20T00:00:00Z'), ccel: log('ccel_trustee_data') });
    const c = a.checks.find((x) => x.name === 'ccel.replay')!;
    expect(c.code).toBe('CCEL_REPLAY_MISMATCH');
    expect(c.detail).toMatch(/RTMR0/);
    expect(parseTdxQuote(quote).body.rtmrs[0]!.toString('hex')).not.toBe(expected('ccel_trustee_data').regs.RTMR0);
  });

  it('rejects malformed logs with CCEL_MALFORMED', () => {
    const good = log('ccel_trustee_data');
    const expectMalformed = (b: Uint8Array): void => expect(() => parseCcel(b)).toThrow(expect.objectContaining({ code: 'CCEL_MALFORMED' }));
    expectMalformed(Buffer.alloc(0));
    expectMalformed(good.subarray(0, 40));
    const badSig = Buffer.from(good.subarray(0, 4096));
    badSig[32]! ^= 0xff;
    expectMalformed(badSig);
    const first = parseCcel(good).events[0]!;
    const badIndex = Buffer.from(good);
    badIndex.writeUInt32LE(9, first.offset);
    expectMalformed(badIndex);
  });

  it('throws only AttestdError on random and mutated logs', () => {
    const base = log('ccel_trustee_data').subarray(0, 8192);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1024 }), (bytes) => {
      try { replayRtmrs(parseCcel(bytes)); } catch (err) { if (!(err instanceof AttestdError)) throw err; }
    }), { numRuns: 300 });
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(2047), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), (edits) => {
      const m = Buffer.from(base);
      for (const [i, v] of edits) m[i] = v;
      try { replayRtmrs(parseCcel(m)); } catch (err) { if (!(err instanceof AttestdError)) throw err; }
    }), { numRuns: 300 });
  });
});
