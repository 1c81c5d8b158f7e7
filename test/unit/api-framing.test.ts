import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { FrameDecoder, frameMessage, MAX_FRAME } from '../../daemon/api/framing.js';
import { AttestdError } from '../../daemon/base/errors.js';

describe('workload API framing', () => {
  it('reassembles frames split at every byte boundary', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 10 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1 }), (payloads, cuts) => {
      const stream = Buffer.concat(payloads.map((p) => frameMessage(p)));
      const d = new FrameDecoder();
      const out: Buffer[] = [];
      let off = 0;
      for (let i = 0; off < stream.length; i++) {
        const n = cuts[i % cuts.length]!;
        out.push(...d.push(stream.subarray(off, off + n)));
        off += n;
      }
      expect(out.map((b) => Buffer.from(b).toString('hex'))).toEqual(payloads.map((p) => Buffer.from(p).toString('hex')));
      expect(d.pending).toBe(0);
    }));
  });

  it('refuses a length over the maximum before buffering it', () => {
    const d = new FrameDecoder();
    const head = Buffer.alloc(4);
    head.writeUInt32BE(MAX_FRAME + 1);
    expect(() => d.push(head)).toThrow(AttestdError);
    try {
      new FrameDecoder().push(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    } catch (err) {
      expect((err as AttestdError).code).toBe('FRAME_TOO_LARGE');
    }
    expect(() => frameMessage(new Uint8Array(MAX_FRAME + 1))).toThrow(/frame/);
  });

  it('accepts exactly the maximum', () => {
    const d = new FrameDecoder();
    expect(d.push(frameMessage(new Uint8Array(MAX_FRAME)))[0]).toHaveLength(MAX_FRAME);
  });

  it('never throws anything but FRAME_TOO_LARGE on random bytes', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 20 }), (chunks) => {
      const d = new FrameDecoder(1024);
      try {
        for (const c of chunks) d.push(Buffer.from(c));
      } catch (err) {
        expect((err as AttestdError).code).toBe('FRAME_TOO_LARGE');
      }
    }));
  });
});
