/**
 * Hostile clients: garbage, truncated, oversized and undecodable frames, unknown calls, a
 * stalled half frame, and thousands of random frames from fast-check. The daemon answers
 * with an error or closes that connection, never crashes, and keeps serving everyone else.
 */
import { describe, it, expect } from 'vitest';
import net from 'node:net';
import fc from 'fast-check';
import { sharedDaemon, State } from '../helpers/daemon.js';
import { FrameDecoder, frameMessage } from '../../daemon/api/framing.js';
import { attestd } from '../../daemon/gen/proto.js';

const env = sharedDaemon();

/** Sends raw bytes; collects decoded responses until the daemon closes or `waitMs` passes. */
function exchange(bytes: Buffer, waitMs = 300): Promise<{ responses: attestd.lease.v1.Response[]; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(env().d.socket);
    const dec = new FrameDecoder();
    const responses: attestd.lease.v1.Response[] = [];
    let closed = false;
    s.on('data', (b) => {
      for (const f of dec.push(b)) responses.push(attestd.lease.v1.Response.decode(f));
    });
    s.on('close', () => {
      closed = true;
      resolve({ responses, closed });
    });
    s.on('error', () => undefined);
    s.on('connect', () => s.write(bytes));
    setTimeout(() => {
      s.destroy();
      if (!closed) resolve({ responses, closed: false });
    }, waitMs);
  });
}

const req = (r: attestd.lease.v1.Request.$Properties) => frameMessage(attestd.lease.v1.Request.encode(r).finish());

describe('hostile frames', () => {
  it('answers an undecodable envelope with MALFORMED_REQUEST and closes', async () => {
    const r = await exchange(frameMessage(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])));
    expect(r.responses[0]!.error!.code).toBe('MALFORMED_REQUEST');
    expect(r.closed).toBe(true);
  });

  it('closes on an oversized length without reading it', async () => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(10 * 1024 * 1024);
    const r = await exchange(head);
    expect(r.responses[0]!.error!.code).toBe('FRAME_TOO_LARGE');
    expect(r.closed).toBe(true);
  });

  it('answers an unknown call and a missing id without closing', async () => {
    const r = await exchange(Buffer.concat([req({ id: 7 }), req({ id: 0, getStatus: {} }), req({ id: 8, getStatus: {} })]));
    expect(r.responses.find((x) => x.id === 7)!.error!.code).toBe('UNKNOWN_CALL');
    expect(r.responses.find((x) => x.id === 0)!.error!.code).toBe('MALFORMED_REQUEST');
    expect(r.responses.find((x) => x.id === 8)!.getStatus!.state).toBe(State.TRUSTED);
    expect(r.closed).toBe(false);
  });

  it('refuses malformed lease ids with a stable code and no detail', async () => {
    const r = await exchange(Buffer.concat([req({ id: 1, renewLease: { leaseId: '../../etc/passwd' } }), req({ id: 2, watchLease: { leaseId: 'A'.repeat(32) } })]));
    for (const x of r.responses) {
      expect(x.error!.code).toBe('LEASE_NOT_FOUND');
      expect(x.error!.message).toBe('no live lease has that id');
    }
  });

  it('pipelines requests and answers each by id', async () => {
    const frames = Buffer.concat(Array.from({ length: 50 }, (_, i) => req({ id: i + 1, getStatus: {} })));
    const r = await exchange(frames, 500);
    expect(r.responses.map((x) => x.id).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });

  it('a client that stalls mid-frame does not stall anyone else', async () => {
    const staller = net.connect(env().d.socket);
    await new Promise((r) => staller.once('connect', r));
    const f = req({ id: 1, getStatus: {} });
    staller.write(f.subarray(0, 5)); // header and one byte, then nothing
    const started = Date.now();
    const s = await env().d.status();
    expect(s.state).toBe(State.TRUSTED);
    expect(Date.now() - started).toBeLessThan(1000);
    staller.destroy();
  });

  it('survives thousands of random frames and keeps serving', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.oneof(
        fc.uint8Array({ maxLength: 300 }).map((b) => frameMessage(b)),
        fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
        fc.record({ id: fc.nat(), leaseId: fc.string({ maxLength: 40 }) }).map((x) => req({ id: x.id, renewLease: { leaseId: x.leaseId } })),
      ), { minLength: 1, maxLength: 20 }),
      async (frames) => {
        const r = await exchange(Buffer.concat(frames), 30);
        for (const x of r.responses) if (x.error) expect(x.error.code).toMatch(/^[A-Z_]+$/);
      },
    ), { numRuns: 400 });
    expect(env().d.proc.exitCode).toBeNull();
    expect((await env().d.status()).state).toBe(State.TRUSTED);
  });
});
