// Property tests: the event log parser, decoders and replay only ever fail with an
// AttestdError, on random bytes and on mutated and truncated real logs. Also an informal
// timing of a 2,000-event log.
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { parseEventLog, replay, type EventLog } from '../../daemon/verify/eventlog/index.js';
import { SHA1_SHA256, eventlogFixture, gceLog, specIdEvent } from './eventlog-helpers.js';

/** Parses and replays; any throw other than an AttestdError fails the property. */
function survives(bytes: Uint8Array): EventLog | undefined {
  try {
    const log = parseEventLog(bytes);
    replay(log);
    JSON.stringify(log.events.map((e) => e.details));
    // Nothing is invented: every event's data lies within the input.
    expect(log.events.reduce((n, e) => n + e.data.length, 0)).toBeLessThanOrEqual(bytes.length);
    return log;
  } catch (err) {
    if (!(err instanceof AttestdError)) throw err;
    expect(['EVENTLOG_MALFORMED', 'QUOTE_UNSUPPORTED_ALGORITHM']).toContain(err.code);
    return undefined;
  }
}

const mutation = fc.record({
  cut: fc.nat(),
  edits: fc.array(fc.record({ at: fc.nat(), value: fc.constantFrom(0x00, 0xff, 0x7f, 0x80, 0x01, 0x03, 0x04, 0x10) }), { maxLength: 8 }),
});

function mutate(base: Buffer, m: { cut: number; edits: { at: number; value: number }[] }): Buffer {
  const out = Buffer.from(base.subarray(0, base.length - (m.cut % Math.max(1, base.length >> 2))));
  for (const e of m.edits) if (out.length > 0) out[e.at % out.length] = e.value;
  return out;
}

describe('parseEventLog on hostile input', () => {
  it('only throws AttestdError on random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (b) => void survives(b)), { numRuns: 500 });
  });

  it('only throws AttestdError on random events after a valid Spec ID event', () => {
    const head = specIdEvent(SHA1_SHA256);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (b) => void survives(Buffer.concat([head, b]))), { numRuns: 500 });
  });

  it('only throws AttestdError on mutated and truncated real logs', () => {
    for (const base of [gceLog(), eventlogFixture('inteltac_binary_bios_measurements_tpm12_sha1.bin')]) {
      fc.assert(fc.property(mutation, (m) => void survives(mutate(base, m))), { numRuns: 150 });
    }
  });

  it('only throws AttestdError when event bodies are corrupted in place', () => {
    const base = gceLog();
    const log = parseEventLog(base);
    // Bodies of extended events: the Spec ID and other NO_ACTION bodies are framing or checked.
    const bodies = log.events
      .map((e, i) => ({ e, end: log.events[i + 1]?.offset ?? base.length }))
      .filter(({ e }) => e.type !== 3)
      .map(({ e, end }) => ({ start: end - e.data.length, len: e.data.length }));
    fc.assert(
      fc.property(fc.nat(), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 6 }), (pick, edits) => {
        const body = bodies[pick % bodies.length];
        if (!body || body.len === 0) return;
        const out = Buffer.from(base);
        for (const [at, v] of edits) out[body.start + (at % body.len)] = v;
        // Bodies are not framing, so the log still parses; decoding must cope with anything.
        expect(survives(out)).toBeDefined();
      }),
      { numRuns: 120 },
    );
  });
});

describe('speed', () => {
  it('parses and replays a 2,000-event log (informal timing)', () => {
    const base = gceLog();
    const log = parseEventLog(base);
    const first = log.events[1]?.offset ?? 0;
    const body = base.subarray(first);
    const copies = Math.ceil(2000 / (log.events.length - 1));
    const big = Buffer.concat([base.subarray(0, first), ...Array.from({ length: copies }, () => body)]);
    const times: number[] = [];
    let events = 0;
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const parsed = parseEventLog(big);
      replay(parsed);
      times.push(performance.now() - t0);
      events = parsed.events.length;
    }
    expect(events).toBeGreaterThanOrEqual(2000);
    const sorted = [...times].sort((a, b) => a - b);
    console.log(`eventlog: ${events} events, ${big.length} bytes: parse+replay median ${sorted[2]?.toFixed(1)} ms (runs ${times.map((t) => t.toFixed(1)).join(', ')})`);
    const t0 = performance.now();
    replay(parseEventLog(big, { details: false }));
    console.log(`eventlog: without details ${(performance.now() - t0).toFixed(1)} ms`);
  });
});
