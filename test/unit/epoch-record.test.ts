/**
 * The epoch record codec: evidence encoded by the daemon's side and decoded by the verifier's
 * side (each with its own carry, through the protobuf bytes) is the evidence that was
 * collected, epoch after epoch, with large artifacts recorded once and carried after; and a
 * record that does not hold together is refused, naming what it breaks.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { attestd } from '../../daemon/gen/proto.js';
import {
  decodeEvidence, encodeEvidence, RecordCarry, RecordMismatch, type CollectedEvidence,
} from '../../daemon/appraisal/epoch-record.js';
import type { EpochVerdict } from '../../daemon/appraisal/epoch-verdict.js';

const V1 = attestd.audit.v1;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((b) => Buffer.from(b));
const nonEmpty = (max: number) => fc.uint8Array({ minLength: 1, maxLength: max }).map((b) => Buffer.from(b));

/** A few artifacts to choose from, so that consecutive epochs often repeat one (and it is carried). */
const artifact = fc.constantFrom(Buffer.from('event log one'), Buffer.from('event log two'), Buffer.from('a third log'));

const tpmArb = fc.record({
  attest: nonEmpty(64), signature: nonEmpty(64), akPublic: nonEmpty(64),
  banks: fc.uniqueArray(fc.record({
    alg: fc.constantFrom('sha1' as const, 'sha256' as const, 'sha384' as const),
    values: fc.uniqueArray(fc.tuple(fc.integer({ min: 0, max: 23 }), nonEmpty(48)), { selector: ([i]) => i, maxLength: 4 })
      .map((v) => new Map(v)),
  }), { selector: (b) => b.alg, maxLength: 3 }),
});

const evidenceArb: fc.Arbitrary<CollectedEvidence> = fc.record({
  tpm: fc.option(tpmArb, { nil: undefined }),
  boot: fc.option(fc.oneof(fc.record({ log: artifact }), fc.record({ readError: fc.string({ minLength: 1, maxLength: 20 }) })), { nil: undefined }),
  ima: fc.option(fc.record({ newLines: bytes(40), byteOffset: fc.nat(1000), restarted: fc.boolean(),
    readError: fc.option(fc.string({ minLength: 1, maxLength: 20 }), { nil: undefined }) }), { nil: undefined }),
  cvm: fc.option(fc.record({
    kind: fc.option(fc.constantFrom('snp' as const, 'tdx' as const), { nil: undefined }),
    report: fc.option(nonEmpty(64), { nil: undefined }),
    certTable: fc.option(artifact, { nil: undefined }),
    collectError: fc.option(fc.string({ minLength: 1, maxLength: 20 }), { nil: undefined }),
    via: fc.option(fc.constantFrom('configfs-tsm', 'sev-guest'), { nil: undefined }),
    collateralIssuedAtMs: fc.option(fc.integer({ min: 1, max: 2 ** 42 }), { nil: undefined }),
  }), { nil: undefined }),
  gpu: fc.option(fc.oneof(
    fc.record({ measurement: nonEmpty(64), reports: fc.array(fc.record({ uuid: fc.uuid(), report: nonEmpty(32), certChain: nonEmpty(32) }), { maxLength: 2 }) }),
    fc.record({ collectError: fc.string({ minLength: 1, maxLength: 20 }), reports: fc.constant<{ uuid: string; report: Buffer; certChain: Buffer }[]>([]) }),
  ), { nil: undefined }),
});

/** What the verdict should be given, derived from the collected evidence alone. */
function expected(e: CollectedEvidence) {
  return {
    tpm: e.tpm && { ...e.tpm, banks: e.tpm.banks.map((b) => ({ alg: b.alg, values: new Map([...b.values].sort((x, y) => x[0] - y[0])) })) },
    boot: e.boot && { log: e.boot.log, readError: e.boot.log ? undefined : e.boot.readError },
    newLines: e.ima?.newLines,
    imaReadError: e.ima?.readError,
    cvm: e.cvm && { kind: e.cvm.kind, report: e.cvm.report, certTable: e.cvm.certTable, collectError: e.cvm.collectError,
      collateralIssuedAtMs: e.cvm.collateralIssuedAtMs },
    gpuMeasurement: e.gpu?.measurement,
    gpuCollectError: e.gpu?.measurement ? undefined : e.gpu?.collectError,
    reports: e.gpu?.measurement ? e.gpu.reports : [],
  };
}

/** One epoch through the codec: daemon encodes with its carry, the bytes are decoded with the verifier's. */
function roundTrip(e: CollectedEvidence, epoch: number, daemon: RecordCarry, verifier: RecordCarry) {
  const fields = encodeEvidence(e, daemon);
  const gpuMeasurementSha256 = sha256(e.gpu?.measurement ?? Buffer.alloc(0));
  const wire = V1.EpochResult.encode({ ...fields, epoch, gpuMeasurementSha256 }).finish();
  // Both sides read the same bytes, as the daemon appraises what it is about to write.
  const mine = decodeEvidence(V1.EpochResult.decode(wire), daemon, []);
  const theirs = decodeEvidence(V1.EpochResult.decode(wire), verifier, []);
  return { fields, mine, theirs, wire };
}

describe('epoch record codec', () => {
  it('decodes what was collected, epoch after epoch, on both sides alike', () => {
    fc.assert(fc.property(fc.array(evidenceArb, { minLength: 1, maxLength: 6 }), (epochs) => {
      const daemon = new RecordCarry();
      const verifier = new RecordCarry();
      epochs.forEach((e, i) => {
        const { mine, theirs } = roundTrip(e, i + 1, daemon, verifier);
        expect(theirs).toEqual(mine);
        const want = expected(e);
        expect(mine.tpm).toEqual(want.tpm);
        expect(mine.boot).toEqual(want.boot);
        expect(mine.ima?.newLines).toEqual(want.newLines);
        expect(mine.ima?.readError).toEqual(want.imaReadError);
        expect(mine.cvm && { ...mine.cvm.rec, collateralIssuedAtMs: mine.cvm.collateralIssuedAtMs }).toEqual(want.cvm);
        expect(mine.gpu?.measurement).toEqual(want.gpuMeasurement);
        expect(mine.gpu?.collectError).toEqual(want.gpuCollectError);
        expect(mine.gpu?.reports).toEqual(want.reports);
        // IMA continues from where the carry's replay stands (none here: no verdict advanced it).
        expect(mine.ima?.state).toBeUndefined();
      });
    }), { numRuns: 300 });
  });

  it('records a large artifact in full once, then by digest while it stays the same', () => {
    const daemon = new RecordCarry();
    const verifier = new RecordCarry();
    const log = Buffer.from('the event log');
    const first = roundTrip({ boot: { log } }, 1, daemon, verifier);
    const second = roundTrip({ boot: { log } }, 2, daemon, verifier);
    const third = roundTrip({ boot: { log: Buffer.from('another') } }, 3, daemon, verifier);
    expect(first.fields.boot?.eventLog).toEqual(log);
    expect(second.fields.boot?.eventLog).toBeNull();
    expect(second.theirs.boot?.log).toEqual(log);
    expect(third.fields.boot?.eventLog).toEqual(Buffer.from('another'));
  });

  it('continues IMA from the carried replay, and from nothing after a restart', () => {
    const daemon = new RecordCarry();
    const verifier = new RecordCarry();
    const state = { entries: 3, pcr10: new Map([['sha256' as const, Buffer.alloc(32, 1)]]) };
    roundTrip({ ima: { newLines: Buffer.from('a'), byteOffset: 0, restarted: false } }, 1, daemon, verifier);
    for (const c of [daemon, verifier]) c.advance({ pass: true, reasons: [], imaNext: state } as EpochVerdict);
    const next = roundTrip({ ima: { newLines: Buffer.from('b'), byteOffset: 1, restarted: false } }, 2, daemon, verifier);
    expect(next.fields.ima?.entriesBefore).toBe(3);
    expect(next.theirs.ima?.state).toEqual(state);
    const restarted = roundTrip({ ima: { newLines: Buffer.from('c'), byteOffset: 0, restarted: true } }, 3, daemon, verifier);
    expect(restarted.fields.ima?.entriesBefore).toBe(0);
    expect(restarted.theirs.ima?.state).toBeUndefined();
  });

  describe('refuses a record that does not hold together', () => {
    const decode = (fields: attestd.audit.v1.IEpochResult, carry = new RecordCarry()) =>
      () => decodeEvidence(V1.EpochResult.decode(V1.EpochResult.encode({ epoch: 7, gpuMeasurementSha256: sha256(Buffer.alloc(0)), ...fields }).finish()), carry, []);
    const refused = (f: () => unknown, check: string, text: RegExp) => {
      let caught: unknown;
      try {
        f();
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(RecordMismatch);
      expect((caught as RecordMismatch).check).toBe(check);
      expect((caught as RecordMismatch).message).toMatch(text);
    };

    it('a GPU digest that is not the recorded measurement\'s', () => {
      refused(decode({ gpu: { measurement: Buffer.from('m') } }), 'reappraisal', /epoch 7 binds a GPU measurement digest/);
    });
    it('an unknown PCR bank', () => {
      refused(decode({ tpm: { attest: Buffer.from('a'), banks: [{ alg: 'md5', values: [] }] } }), 'quote', /unknown PCR bank/);
    });
    it('an event log named by digest that no earlier epoch recorded', () => {
      refused(decode({ boot: { eventLogSha256: sha256(Buffer.from('x')) } }), 'record', /names an event log/);
    });
    it('a certificate table named by digest that no earlier epoch recorded', () => {
      refused(decode({ cvm: { kind: 'snp', certTableSha256: sha256(Buffer.from('x')) } }), 'record', /names a certificate table/);
    });
    it('IMA continuing after another entry than the session replayed', () => {
      refused(decode({ ima: { entriesBefore: 5, newLines: Buffer.from('x') } }), 'record', /continues IMA after entry 5/);
    });
    it('never throws anything but RecordMismatch on arbitrary decoded records', () => {
      fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (raw) => {
        let r: attestd.audit.v1.EpochResult;
        try {
          r = V1.EpochResult.decode(raw);
        } catch {
          return;
        }
        try {
          decodeEvidence(r, new RecordCarry(), []);
        } catch (err) {
          expect(err).toBeInstanceOf(RecordMismatch);
        }
      }), { numRuns: 2000 });
    });
  });
});
