// Properties of the one bounded byte reader every binary decoder reads through: integers
// written in either byte order read back as written; a read past the end of its window (the
// buffer, a view into a larger one, or a sub-reader) always throws the reader's code, never
// returns bytes from outside; bad lengths are refused before anything is read.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { ByteReader, type ByteOrder } from '../../daemon/verify/bytes/reader.js';

const RUNS = { numRuns: 500 };

type Field =
  | { kind: 'u8' | 'u16' | 'u24' | 'u32'; value: number }
  | { kind: 'u64'; value: bigint }
  | { kind: 'bytes'; value: Uint8Array };

const SIZE = { u8: 1, u16: 2, u24: 3, u32: 4, u64: 8 } as const;

const field: fc.Arbitrary<Field> = fc.oneof(
  fc.integer({ min: 0, max: 0xff }).map((value) => ({ kind: 'u8' as const, value })),
  fc.integer({ min: 0, max: 0xffff }).map((value) => ({ kind: 'u16' as const, value })),
  fc.integer({ min: 0, max: 0xffffff }).map((value) => ({ kind: 'u24' as const, value })),
  fc.integer({ min: 0, max: 0xffffffff }).map((value) => ({ kind: 'u32' as const, value })),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((value) => ({ kind: 'u64' as const, value })),
  fc.uint8Array({ maxLength: 40 }).map((value) => ({ kind: 'bytes' as const, value })),
);

const order: fc.Arbitrary<ByteOrder> = fc.constantFrom('le', 'be');

function sizeOf(f: Field): number {
  return f.kind === 'bytes' ? f.value.length : SIZE[f.kind];
}

/** The writer the reader is checked against: node's own Buffer methods. */
function write(fields: readonly Field[], o: ByteOrder): Buffer {
  const out = Buffer.alloc(fields.reduce((n, f) => n + sizeOf(f), 0));
  let at = 0;
  for (const f of fields) {
    if (f.kind === 'bytes') Buffer.from(f.value).copy(out, at);
    else if (f.kind === 'u64') {
      if (o === 'le') out.writeBigUInt64LE(f.value, at);
      else out.writeBigUInt64BE(f.value, at);
    } else if (o === 'le') out.writeUIntLE(f.value, at, SIZE[f.kind]);
    else out.writeUIntBE(f.value, at, SIZE[f.kind]);
    at += sizeOf(f);
  }
  return out;
}

function read(r: ByteReader, f: Field): number | bigint | Uint8Array {
  switch (f.kind) {
    case 'u8':
      return r.u8();
    case 'u16':
      return r.u16();
    case 'u24':
      return r.u24();
    case 'u32':
      return r.u32();
    case 'u64':
      return r.u64();
    case 'bytes':
      return new Uint8Array(r.bytes(f.value.length));
  }
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('ByteReader round trips', () => {
  it('reads back every integer and byte string written, in either order, and ends exactly', () => {
    fc.assert(
      fc.property(fc.array(field, { maxLength: 12 }), order, (fields, o) => {
        const r = new ByteReader(write(fields, o), o, 'QUOTE_MALFORMED');
        for (const f of fields) expect(read(r, f)).toEqual(f.value);
        expect(r.remaining).toBe(0);
        r.end();
      }),
      RUNS,
    );
  });

  it('reads the same from a view into a larger buffer and from a sub-reader', () => {
    fc.assert(
      fc.property(fc.array(field, { maxLength: 8 }), order, fc.uint8Array({ maxLength: 9 }), fc.uint8Array({ maxLength: 9 }), (fields, o, before, after) => {
        const body = write(fields, o);
        const whole = Buffer.concat([before, body, after]);
        const view = new ByteReader(whole.subarray(before.length, before.length + body.length), o, 'CVM_REPORT_MALFORMED');
        const parent = new ByteReader(whole, o, 'CVM_REPORT_MALFORMED');
        parent.skip(before.length);
        const sub = parent.sub(body.length, 'body');
        expect(parent.remaining).toBe(after.length);
        for (const r of [view, sub]) {
          for (const f of fields) expect(read(r, f)).toEqual(f.value);
          r.end();
        }
      }),
      RUNS,
    );
  });
});

describe('ByteReader bounds', () => {
  it('either returns exactly the bytes in its window or throws its code, and a failed read moves nothing', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 24 }), fc.array(field, { maxLength: 10 }), order, fc.nat({ max: 8 }), (bytes, fields, o, pad) => {
        // The window is surrounded by bytes it must never return.
        const whole = Buffer.concat([Buffer.alloc(pad, 0xee), bytes, Buffer.alloc(pad, 0xee)]);
        const r = new ByteReader(whole.subarray(pad, pad + bytes.length), o, 'EVENTLOG_MALFORMED');
        let at = 0;
        for (const f of fields) {
          const n = sizeOf(f);
          if (n > bytes.length - at) {
            const err = thrown(() => read(r, f));
            expect(err).toBeInstanceOf(AttestdError);
            expect((err as AttestdError).code).toBe('EVENTLOG_MALFORMED');
            expect(r.offset).toBe(at);
            continue;
          }
          const expected = Buffer.from(bytes.subarray(at, at + n));
          const got = read(r, f);
          if (f.kind === 'bytes') expect(Buffer.from(got as Uint8Array)).toEqual(expected);
          else if (f.kind === 'u64') expect(got).toBe(o === 'le' ? expected.readBigUInt64LE() : expected.readBigUInt64BE());
          else expect(got).toBe(o === 'le' ? expected.readUIntLE(0, n) : expected.readUIntBE(0, n));
          at += n;
        }
        expect(r.remaining).toBe(bytes.length - at);
      }),
      RUNS,
    );
  });

  it('keeps a sub-reader inside its window even when its parent has more', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 32 }), fc.nat(), fc.nat({ max: 16 }), (bytes, cut, extra) => {
        const size = cut % (bytes.length + 1);
        const parent = new ByteReader(bytes, 'le', 'GPU_REPORT_MALFORMED');
        const sub = parent.sub(size, 'window');
        expect((thrown(() => sub.bytes(size + 1 + extra)) as AttestdError).code).toBe('GPU_REPORT_MALFORMED');
        expect(sub.bytes(size)).toEqual(Buffer.from(bytes.subarray(0, size)));
        expect((thrown(() => sub.u8()) as AttestdError).code).toBe('GPU_REPORT_MALFORMED');
        expect(parent.remaining).toBe(bytes.length - size);
      }),
      RUNS,
    );
  });

  it('refuses negative, fractional, unsafe and oversized lengths before reading', () => {
    const bad = fc.oneof(
      fc.integer({ max: -1 }),
      fc.double({ noInteger: true }),
      fc.constantFrom(Number.NaN, Infinity, -Infinity, 2 ** 53, Number.MAX_VALUE),
      fc.integer({ min: 17, max: 2 ** 31 }),
    );
    fc.assert(
      fc.property(bad, fc.constantFrom('bytes', 'skip', 'sub', 'need') as fc.Arbitrary<'bytes' | 'skip' | 'sub' | 'need'>, (n, op) => {
        const r = new ByteReader(Buffer.alloc(16), 'be', 'INVALID_ARGUMENT');
        const err = thrown(() => (op === 'need' ? r.need(n, 'n') : r[op](n, 'n')));
        expect((err as AttestdError).code).toBe('INVALID_ARGUMENT');
        expect(r.offset).toBe(0);
      }),
      RUNS,
    );
  });

  it('reads a 64-bit length only when it fits what is left', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.nat({ max: 40 }), (n, left) => {
        const bytes = Buffer.alloc(8 + left);
        bytes.writeBigUInt64LE(n);
        const r = new ByteReader(bytes, 'le', 'EVENTLOG_MALFORMED');
        if (n <= BigInt(left)) expect(r.length64('size')).toBe(Number(n));
        else expect((thrown(() => r.length64('size')) as AttestdError).code).toBe('EVENTLOG_MALFORMED');
      }),
      RUNS,
    );
  });
});

describe('ByteReader hex and reserved bytes', () => {
  it('hex() is the hex of what bytes() reads, and zeros() says whether every byte read was zero', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.nat({ max: 48 }), (bytes, n) => {
        const a = new ByteReader(bytes, 'le', 'CVM_REPORT_MALFORMED');
        const b = new ByteReader(bytes, 'le', 'CVM_REPORT_MALFORMED');
        const c = new ByteReader(bytes, 'le', 'CVM_REPORT_MALFORMED');
        if (n > bytes.length) {
          for (const read of [() => a.hex(n), () => c.zeros(n)]) expect((thrown(read) as AttestdError).code).toBe('CVM_REPORT_MALFORMED');
          return;
        }
        expect(a.hex(n)).toBe(b.bytes(n).toString('hex'));
        expect(c.zeros(n)).toBe(bytes.subarray(0, n).every((x) => x === 0));
        expect([a.offset, c.offset]).toEqual([n, n]);
      }),
      RUNS,
    );
  });
});

describe('ByteReader messages', () => {
  it('names the field and prefixes where the decoder says it is, built only on failure', () => {
    let asked = 0;
    const r = new ByteReader(Buffer.from([1, 2, 3]), 'le', 'CCEL_MALFORMED', () => {
      asked++;
      return 'event 7 at offset 0x40: ';
    });
    expect(r.u16('size')).toBe(0x0201);
    expect(asked).toBe(0);
    expect(() => r.u32('digest count')).toThrow('event 7 at offset 0x40: digest count needs 4 bytes, 1 left');
    expect(() => r.end('event')).toThrow('event 7 at offset 0x40: event has 1 trailing bytes');
    expect(() => r.sub(2, 'data')).toThrow(/^event 7 at offset 0x40: data needs 2 bytes, 1 left$/);
    expect(asked).toBe(3);
  });
});
