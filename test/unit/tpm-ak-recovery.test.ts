/**
 * Tpm's answer to TPM_RC_OBJECT_MEMORY when it makes the storage root key and the AK under
 * it, against a scripted ESYS:
 * flush leftovers and retry once on the simulator transports, never behind a resource
 * manager, and say what was flushed when the retry fails too.
 */
import koffi from 'koffi';
import { describe, expect, it, vi } from 'vitest';
import { akTemplate } from '../../daemon/evidence/tpm/ak-template.js';
import { Tpm } from '../../daemon/evidence/tpm/tpm.js';
import type { Ptr, Tss } from '../../daemon/evidence/tpm/tss.js';
import { TpmWriter } from '../../daemon/verify/tpm-reader.js';

const state = vi.hoisted(() => ({ tss: undefined as unknown }));

vi.mock('../../daemon/evidence/tpm/tss.js', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../daemon/evidence/tpm/tss.js')>()),
  loadTss: () => state.tss,
}));

const OBJECT_MEMORY = 0x902;
/** TPM_RC_HIERARCHY for handle 1: some other refusal. */
const RC_HIERARCHY = 0x185;
/** TSS2_RC of the TCTI layer: IO_ERROR, a broken link. */
const RC_TCTI_IO = 0x000a000a;
const AK_TR = 0x4001;
const SRK_TR = 0x4002;
const PUBLIC_PTR = 0x7001n;
const CAP_PTR = 0x7002n;
const PRIVATE_PTR = 0x7003n;

/** What a TPM returns for the template: the fixed part, then a public point. */
function akPublic2b(): Buffer {
  const t = akTemplate();
  const created = new TpmWriter()
    .bytes(t.subarray(0, t.length - 4))
    .tpm2b(Buffer.alloc(32, 1))
    .tpm2b(Buffer.alloc(32, 2))
    .finish();
  return new TpmWriter().tpm2b(created).finish();
}

function capData(handles: number[]): Buffer {
  const w = new TpmWriter().u32(1).u32(handles.length);
  for (const h of handles) w.u32(h);
  return w.finish();
}

/**
 * An ESYS whose CreatePrimary (the storage root key) answers `creates` in turn, whose TPM
 * holds `loaded`, and whose GetCapability answers `listRc`; Create and Load of the AK succeed.
 */
function script(creates: number[], loaded: number[] = [], listRc = 0): string[] {
  const calls: string[] = [];
  const fake = {
    tctiInitialize: async (_conf: string, slot: Ptr) => {
      koffi.encode(slot, 'void *', 0x10n);
      return 0;
    },
    tctiFinalize: async () => undefined,
    esysInitialize: async (slot: Ptr) => {
      koffi.encode(slot, 'void *', 0x20n);
      return 0;
    },
    esysFinalize: async () => undefined,
    unmarshal: () => undefined,
    createPrimary: async (...args: unknown[]) => {
      calls.push('CreatePrimary');
      const rc = creates.shift() ?? 0;
      const outs = args[6] as { handle: Ptr };
      if (rc === 0) koffi.encode(outs.handle, 'uint32_t', SRK_TR);
      return rc;
    },
    create: async (...args: unknown[]) => {
      calls.push('Create');
      const outs = args[6] as { outPrivate: Ptr; outPublic: Ptr };
      koffi.encode(outs.outPublic, 'void *', PUBLIC_PTR);
      koffi.encode(outs.outPrivate, 'void *', PRIVATE_PTR);
      return 0;
    },
    load: async (_ctx: Ptr, _parent: number, _priv: Ptr, _pub: Ptr, slot: Ptr) => {
      calls.push('Load');
      koffi.encode(slot, 'uint32_t', AK_TR);
      return 0;
    },
    trSetAuth: async () => 0,
    getCapability: async (_ctx: Ptr, _cap: number, _prop: number, _count: number, o: { capabilityData: Ptr }) => {
      calls.push('GetCapability');
      if (listRc === 0) koffi.encode(o.capabilityData, 'void *', CAP_PTR);
      return listRc;
    },
    trFromTpmPublic: async (_ctx: Ptr, handle: number, slot: Ptr) => {
      koffi.encode(slot, 'uint32_t', handle & 0xffff);
      return 0;
    },
    flushContext: async (_ctx: Ptr, tr: number) => {
      calls.push(`Flush ${tr.toString(16)}`);
      return 0;
    },
    marshal: (type: string, p: Ptr) => {
      if (type === 'TPM2B_PUBLIC' && p === PUBLIC_PTR) return akPublic2b();
      if (type === 'TPM2B_PRIVATE' && p === PRIVATE_PTR) return new TpmWriter().tpm2b(Buffer.alloc(48, 3)).finish();
      if (type === 'TPMS_CAPABILITY_DATA' && p === CAP_PTR) return capData(loaded);
      throw new Error(`unexpected marshal of ${type}`);
    },
    free: () => undefined,
    decodeRc: (rc: number) => (rc === OBJECT_MEMORY ? 'out of memory for object contexts' : 'refused'),
  };
  state.tss = fake as unknown as Tss;
  return calls;
}

async function failure(tcti: string): Promise<{ code: string; message: string }> {
  const tpm = await Tpm.open(tcti);
  try {
    const err = await tpm.attestationKeyPublic().then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string },
    );
    expect(err).toBeDefined();
    return err as { code: string; message: string };
  } finally {
    await tpm.close();
  }
}

describe('Tpm AK creation on a full TPM', () => {
  it.each(['device:/dev/tpmrm0', 'device', 'tabrmd'])('flushes nothing behind a resource manager (%s)', async (tcti) => {
    const calls = script([OBJECT_MEMORY], [0x80000000]);
    const err = await failure(tcti);
    expect(err.code).toBe('TPM_COMMAND_FAILED');
    expect(err.message).toBe('Esys_CreatePrimary(storage root key) failed: 0x00000902 out of memory for object contexts');
    expect(calls).toEqual(['CreatePrimary']);
  });

  it('on swtpm flushes what dead sessions left, retries once, and flushes only its own AK on close', async () => {
    const calls = script([OBJECT_MEMORY, 0], [0x80000000, 0x80000001, 0x80000002]);
    const tpm = await Tpm.open('swtpm:path=/run/swtpm/tpm.sock');
    expect(await tpm.attestationKeyPublic()).toEqual(akPublic2b().subarray(2));
    await tpm.close();
    expect(calls).toEqual([
      'CreatePrimary', 'GetCapability', 'Flush 0', 'Flush 1', 'Flush 2', 'CreatePrimary', 'Create', 'Load',
      `Flush ${SRK_TR.toString(16)}`, `Flush ${AK_TR.toString(16)}`,
    ]);
  });

  it('says what it flushed when the retry fails too, and retries only once', async () => {
    const calls = script([OBJECT_MEMORY, OBJECT_MEMORY, 0], [0x80000000, 0x80000001]);
    const err = await failure('mssim:host=localhost,port=2321');
    expect(err.code).toBe('TPM_COMMAND_FAILED');
    expect(err.message).toBe(
      'Esys_CreatePrimary(storage root key) failed: 0x00000902 out of memory for object contexts ' +
        '(flushed 2 of 2 transient objects left by earlier sessions)',
    );
    expect(calls.filter((c) => c === 'CreatePrimary')).toHaveLength(2);
  });

  it('does not retry when there was nothing to flush', async () => {
    const calls = script([OBJECT_MEMORY, 0], []);
    const err = await failure('swtpm:path=/run/swtpm/tpm.sock');
    expect(err.message).toMatch(/0x00000902 .*\(flushed 0 of 0 transient objects/);
    expect(calls).toEqual(['CreatePrimary', 'GetCapability']);
  });

  it('reports a list the TPM would not give, and does not retry', async () => {
    const calls = script([OBJECT_MEMORY, 0], [], RC_HIERARCHY);
    const err = await failure('swtpm:path=/run/swtpm/tpm.sock');
    expect(err.code).toBe('TPM_COMMAND_FAILED');
    expect(err.message).toBe(
      'Esys_CreatePrimary(storage root key) failed: 0x00000902 out of memory for object contexts ' +
        '(no leftovers flushed: Esys_GetCapability(handles-transient) failed: 0x00000185 refused)',
    );
    expect(calls).toEqual(['CreatePrimary', 'GetCapability']);
  });

  it('fails with TPM_UNAVAILABLE when the link breaks while it recovers', async () => {
    script([OBJECT_MEMORY, 0], [], RC_TCTI_IO);
    expect((await failure('swtpm:path=/run/swtpm/tpm.sock')).code).toBe('TPM_UNAVAILABLE');
  });

  it('flushes nothing on other refusals', async () => {
    const calls = script([RC_HIERARCHY, 0], [0x80000000]);
    const err = await failure('swtpm:path=/run/swtpm/tpm.sock');
    expect(err.message).toBe('Esys_CreatePrimary(storage root key) failed: 0x00000185 refused');
    expect(calls).toEqual(['CreatePrimary']);
  });
});
