/**
 * Recovery from transient objects left by dead sessions: the TPML_HANDLE parser on hostile
 * bytes, which transports may flush at all, and the flush loop against a scripted ESYS.
 */
import fc from 'fast-check';
import koffi from 'koffi';
import { describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { describeFlush, flushLeftovers, mayFlushLeftovers } from '../../daemon/evidence/tpm/leftovers.js';
import { parseTcti } from '../../daemon/evidence/tpm/tcti.js';
import {
  MAX_TRANSIENT_HANDLES,
  parseTransientHandles,
  TPM_CAP_HANDLES,
  TRANSIENT_FIRST,
  TRANSIENT_LAST,
} from '../../daemon/evidence/tpm/transient-handles.js';
import type { Ptr, Tss } from '../../daemon/evidence/tpm/tss.js';
import { TpmWriter } from '../../daemon/verify/tpm-reader.js';

function capData(handles: number[], capability = TPM_CAP_HANDLES, count = handles.length): Buffer {
  const w = new TpmWriter().u32(capability).u32(count);
  for (const h of handles) w.u32(h);
  return w.finish();
}

function code(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (err) {
    return err instanceof AttestdError ? err.code : `not an AttestdError: ${String(err)}`;
  }
}

describe('parseTransientHandles', () => {
  it('reads an empty list and a list of transient handles', () => {
    expect(parseTransientHandles(capData([]))).toEqual([]);
    expect(parseTransientHandles(capData([0x80000000, 0x80000002, TRANSIENT_LAST]))).toEqual([
      0x80000000, 0x80000002, TRANSIENT_LAST,
    ]);
  });

  it.each([
    ['another capability', capData([0x80000000], 6)],
    ['a count over the maximum, before reading handles', capData([], TPM_CAP_HANDLES, MAX_TRANSIENT_HANDLES + 1)],
    ['a count of 2^32-1', capData([], TPM_CAP_HANDLES, 0xffffffff)],
    ['a persistent handle', capData([0x81000001])],
    ['a PCR handle', capData([0x00000000])],
    ['the handle after the transient range', capData([0x80ffffff])],
    ['a handle listed twice', capData([0x80000001, 0x80000001])],
    ['fewer handles than counted', capData([0x80000001], TPM_CAP_HANDLES, 2)],
    ['trailing bytes', Buffer.concat([capData([0x80000001]), Buffer.from([0])])],
    ['a truncated header', Buffer.from([0, 0, 0, 1, 0, 0])],
    ['nothing', Buffer.alloc(0)],
  ])('refuses %s with TPM_COMMAND_FAILED', (_what, bytes) => {
    expect(code(() => parseTransientHandles(bytes))).toBe('TPM_COMMAND_FAILED');
  });

  it('honours a smaller maximum', () => {
    expect(code(() => parseTransientHandles(capData([0x80000000, 0x80000001]), 1))).toBe('TPM_COMMAND_FAILED');
  });

  it('returns only distinct transient handles or throws AttestdError, on any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), (bytes) => {
        let out: number[];
        try {
          out = parseTransientHandles(bytes);
        } catch (err) {
          return err instanceof AttestdError && err.code === 'TPM_COMMAND_FAILED';
        }
        return (
          out.length <= MAX_TRANSIENT_HANDLES &&
          new Set(out).size === out.length &&
          out.every((h) => h >= TRANSIENT_FIRST && h <= TRANSIENT_LAST)
        );
      }),
      { numRuns: 2000 },
    );
  });

  it('throws only TPM_COMMAND_FAILED on random bytes behind a plausible header', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 20 }), fc.uint8Array({ maxLength: 80 }), (count, rest) => {
        const bytes = Buffer.concat([new TpmWriter().u32(TPM_CAP_HANDLES).u32(count).finish(), rest]);
        const c = code(() => parseTransientHandles(bytes));
        expect(c === undefined || c === 'TPM_COMMAND_FAILED').toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('reads back every valid list it is given', () => {
    const handle = fc.integer({ min: TRANSIENT_FIRST, max: TRANSIENT_LAST });
    fc.assert(
      fc.property(fc.uniqueArray(handle, { maxLength: MAX_TRANSIENT_HANDLES }), (handles) => {
        expect(parseTransientHandles(capData(handles))).toEqual(handles);
      }),
    );
  });
});

describe('mayFlushLeftovers', () => {
  it('allows flushing only on transports without a resource manager', () => {
    expect(mayFlushLeftovers(parseTcti('swtpm:path=/run/swtpm.sock').name)).toBe(true);
    expect(mayFlushLeftovers(parseTcti('mssim:host=localhost,port=2321').name)).toBe(true);
    expect(mayFlushLeftovers(parseTcti('device:/dev/tpmrm0').name)).toBe(false);
    expect(mayFlushLeftovers(parseTcti('device').name)).toBe(false);
    expect(mayFlushLeftovers(parseTcti('tabrmd').name)).toBe(false);
  });
});

/** TSS2_RC of the TCTI layer: IO_ERROR, a broken link. */
const RC_TCTI_IO = 0x000a000a;
/** TPM_RC_HANDLE for handle 1: the object is gone. */
const RC_HANDLE = 0x0000018b;
const FAKE_CAP_DATA = 0x5151n;

interface Script {
  list: { rc: number; bytes?: Buffer };
  fromPublic?: Map<number, number>;
  flush?: Map<number, number>;
}

/** An ESYS that answers from `script` and records what it was asked to flush. */
function fakeTss(script: Script): { tss: Tss; flushed: number[]; freed: Ptr[] } {
  const flushed: number[] = [];
  const freed: Ptr[] = [];
  const tss = {
    getCapability: async (_ctx: Ptr, cap: number, prop: number, count: number, o: { capabilityData: Ptr }) => {
      expect([cap, prop, count]).toEqual([TPM_CAP_HANDLES, TRANSIENT_FIRST, MAX_TRANSIENT_HANDLES]);
      if (script.list.rc === 0) koffi.encode(o.capabilityData, 'void *', FAKE_CAP_DATA);
      return script.list.rc;
    },
    // The ESYS_TR handed out is the TPM handle with the top byte cleared.
    trFromTpmPublic: async (_ctx: Ptr, handle: number, slot: Ptr) => {
      const rc = script.fromPublic?.get(handle) ?? 0;
      if (rc === 0) koffi.encode(slot, 'uint32_t', handle & 0xffffff);
      return rc;
    },
    flushContext: async (_ctx: Ptr, tr: number) => {
      const rc = script.flush?.get(tr) ?? 0;
      if (rc === 0) flushed.push(tr);
      return rc;
    },
    marshal: (type: string, p: Ptr) => {
      expect([type, p]).toEqual(['TPMS_CAPABILITY_DATA', FAKE_CAP_DATA]);
      return script.list.bytes ?? Buffer.alloc(0);
    },
    free: (p: Ptr | null) => {
      if (p !== null) freed.push(p);
    },
    decodeRc: (rc: number) => `rc ${rc}`,
  };
  return { tss: tss as unknown as Tss, flushed, freed };
}

describe('flushLeftovers', () => {
  it('flushes every listed object through its ESYS_TR and frees the ESYS answer', async () => {
    const f = fakeTss({ list: { rc: 0, bytes: capData([0x80000000, 0x80000001, 0x80000002]) } });
    const report = await flushLeftovers(f.tss, 1n);
    expect(f.flushed).toEqual([0, 1, 2]);
    expect(report).toEqual({ found: 3, flushed: 3, failures: [] });
    expect(describeFlush(report)).toBe('flushed 3 of 3 transient objects left by earlier sessions');
    expect(f.freed).toEqual([FAKE_CAP_DATA]);
  });

  it('reports objects it cannot flush and goes on with the rest', async () => {
    const f = fakeTss({
      list: { rc: 0, bytes: capData([0x80000000, 0x80000001, 0x80000002]) },
      fromPublic: new Map([[0x80000000, RC_HANDLE]]),
      flush: new Map([[1, RC_HANDLE]]),
    });
    const report = await flushLeftovers(f.tss, 1n);
    expect(f.flushed).toEqual([2]);
    expect(report.found).toBe(3);
    expect(report.flushed).toBe(1);
    expect(report.failures).toEqual([
      expect.stringContaining('Esys_TR_FromTPMPublic(0x80000000) failed: 0x0000018b'),
      expect.stringContaining('Esys_FlushContext(0x80000001) failed: 0x0000018b'),
    ]);
    expect(describeFlush(report)).toMatch(/^flushed 1 of 3 .*; Esys_TR_FromTPMPublic.*; Esys_FlushContext/);
  });

  it('stops with TPM_UNAVAILABLE when the link breaks', async () => {
    const f = fakeTss({
      list: { rc: 0, bytes: capData([0x80000000, 0x80000001]) },
      fromPublic: new Map([[0x80000000, RC_TCTI_IO]]),
    });
    await expect(flushLeftovers(f.tss, 1n)).rejects.toMatchObject({ code: 'TPM_UNAVAILABLE' });
    expect(f.flushed).toEqual([]);
  });

  it('flushes nothing when the list cannot be read or is malformed', async () => {
    const failed = fakeTss({ list: { rc: RC_HANDLE } });
    await expect(flushLeftovers(failed.tss, 1n)).rejects.toMatchObject({ code: 'TPM_COMMAND_FAILED' });
    const persistent = fakeTss({ list: { rc: 0, bytes: capData([0x80000000, 0x81000001]) } });
    await expect(flushLeftovers(persistent.tss, 1n)).rejects.toMatchObject({ code: 'TPM_COMMAND_FAILED' });
    expect([...failed.flushed, ...persistent.flushed]).toEqual([]);
    expect(persistent.freed).toEqual([FAKE_CAP_DATA]);
  });
});
