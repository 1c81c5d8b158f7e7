// Pure decoders of TPM answers used for PCR banks and EK certificates: GetCapability(PCRS),
// GetCapability(TPM_PROPERTIES), TPM2B_NV_PUBLIC, and the choice of NV read authorisation.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { parseAllocatedBanks } from '../../daemon/evidence/tpm/banks.js';
import { parseTpmProperties, TPM_PT_NV_BUFFER_MAX } from '../../daemon/evidence/tpm/capability.js';
import { isMissingHandle, parseNvPublic, readAuthOrder, TPMA_NV } from '../../daemon/evidence/tpm/nv.js';
import { TpmWriter } from '../../daemon/verify/tpm-reader.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof AttestdError ? err.code : `not an AttestdError: ${String(err)}`;
  }
}

/** TPMS_CAPABILITY_DATA for TPM_CAP_PCRS from [alg id, bitmap] pairs. */
function pcrsAnswer(banks: [number, number[]][], capability = 5): Buffer {
  const w = new TpmWriter().u32(capability).u32(banks.length);
  for (const [alg, bitmap] of banks) w.u16(alg).u8(bitmap.length).bytes(Buffer.from(bitmap));
  return w.finish();
}

describe('parseAllocatedBanks', () => {
  it('lists banks with at least one PCR selected, in TPM_ALG_ID order', () => {
    const answer = pcrsAnswer([
      [0x000c, [0xff, 0xff, 0xff]],
      [0x0004, [0, 0, 0]],
      [0x000b, [0x01, 0, 0]],
      [0x000d, [0, 0, 0]],
    ]);
    expect(parseAllocatedBanks(answer)).toEqual(['sha256', 'sha384']);
  });

  it('skips hashes it does not know (SM3-256)', () => {
    expect(parseAllocatedBanks(pcrsAnswer([[0x0012, [0xff, 0xff, 0xff]], [0x000b, [0xff, 0xff, 0xff]]]))).toEqual(['sha256']);
  });

  it('refuses another capability, a bank listed twice, oversized selects and trailing bytes', () => {
    expect(codeOf(() => parseAllocatedBanks(pcrsAnswer([[0x000b, [1, 0, 0]]], 6)))).toBe('TPM_COMMAND_FAILED');
    expect(codeOf(() => parseAllocatedBanks(pcrsAnswer([[0x000b, [1, 0, 0]], [0x000b, [0, 0, 0]]])))).toBe('TPM_COMMAND_FAILED');
    expect(codeOf(() => parseAllocatedBanks(pcrsAnswer([[0x000b, [1, 0, 0, 0, 0]]])))).toBe('TPM_COMMAND_FAILED');
    expect(codeOf(() => parseAllocatedBanks(Buffer.concat([pcrsAnswer([[0x000b, [1, 0, 0]]]), Buffer.from([0])])))).toBe(
      'TPM_COMMAND_FAILED',
    );
    expect(codeOf(() => parseAllocatedBanks(new TpmWriter().u32(5).u32(0xffffffff).finish()))).toBe('TPM_COMMAND_FAILED');
  });

  it('returns banks or throws TPM_COMMAND_FAILED on any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        const code = codeOf(() => parseAllocatedBanks(bytes));
        expect(code === undefined || code === 'TPM_COMMAND_FAILED').toBe(true);
      }),
    );
    const bank = fc.tuple(fc.integer({ min: 0, max: 0x20 }), fc.array(fc.nat(255), { maxLength: 4 }));
    fc.assert(
      fc.property(fc.array(bank, { maxLength: 6 }), (banks) => {
        const code = codeOf(() => parseAllocatedBanks(pcrsAnswer(banks)));
        expect(code === undefined || code === 'TPM_COMMAND_FAILED').toBe(true);
      }),
    );
  });
});

describe('parseTpmProperties', () => {
  it('reads property/value pairs', () => {
    const answer = new TpmWriter().u32(6).u32(2).u32(TPM_PT_NV_BUFFER_MAX).u32(1024).u32(0x12d).u32(7).finish();
    expect(parseTpmProperties(answer).get(TPM_PT_NV_BUFFER_MAX)).toBe(1024);
  });

  it('refuses a count beyond the bound, duplicates and other capabilities', () => {
    expect(codeOf(() => parseTpmProperties(new TpmWriter().u32(6).u32(2).u32(1).u32(1).u32(1).u32(2).finish()))).toBe(
      'TPM_COMMAND_FAILED',
    );
    expect(codeOf(() => parseTpmProperties(new TpmWriter().u32(6).u32(1000).finish(), 127))).toBe('TPM_COMMAND_FAILED');
    expect(codeOf(() => parseTpmProperties(new TpmWriter().u32(5).u32(0).finish()))).toBe('TPM_COMMAND_FAILED');
  });

  it('returns a map or throws TPM_COMMAND_FAILED on any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const code = codeOf(() => parseTpmProperties(bytes));
        expect(code === undefined || code === 'TPM_COMMAND_FAILED').toBe(true);
      }),
    );
  });
});

describe('NV public area and read authorisation', () => {
  const nvPublic = (attributes: number, dataSize: number, policy = Buffer.alloc(0)): Buffer => {
    const inner = new TpmWriter().u32(0x01c00002).u16(0x000b).u32(attributes).tpm2b(policy).u16(dataSize).finish();
    return new TpmWriter().tpm2b(inner).finish();
  };

  it('parses what swtpm_setup defines for an EK certificate', () => {
    expect(parseNvPublic(nvPublic(0x62072801, 1016))).toEqual({
      index: 0x01c00002,
      nameAlg: 0x000b,
      attributes: 0x62072801,
      dataSize: 1016,
    });
  });

  it('refuses an oversized policy, a short size and trailing bytes', () => {
    expect(codeOf(() => parseNvPublic(nvPublic(0, 1, Buffer.alloc(65))))).toBe('TPM_COMMAND_FAILED');
    expect(codeOf(() => parseNvPublic(nvPublic(0, 1).subarray(0, 10)))).toBe('TPM_COMMAND_FAILED');
    expect(codeOf(() => parseNvPublic(Buffer.concat([nvPublic(0, 1), Buffer.from([0])])))).toBe('TPM_COMMAND_FAILED');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), (bytes) => {
        const code = codeOf(() => parseNvPublic(bytes));
        expect(code === undefined || code === 'TPM_COMMAND_FAILED').toBe(true);
      }),
    );
  });

  it('tries the index itself first only when failures do not count against lockout', () => {
    const { AUTHREAD, OWNERREAD, PPREAD, NO_DA } = TPMA_NV;
    expect(readAuthOrder(AUTHREAD | OWNERREAD | PPREAD | NO_DA)).toEqual(['index', 'owner', 'platform']);
    expect(readAuthOrder(AUTHREAD | OWNERREAD)).toEqual(['owner', 'index']);
    expect(readAuthOrder(OWNERREAD)).toEqual(['owner']);
    expect(readAuthOrder(TPMA_NV.POLICYREAD)).toEqual([]);
  });

  it('recognises TPM_RC_HANDLE at any handle position, and nothing else', () => {
    expect(isMissingHandle(0x18b)).toBe(true);
    expect(isMissingHandle(0x28b)).toBe(true);
    expect(isMissingHandle(0x1cb)).toBe(false); // a parameter error, not a handle
    expect(isMissingHandle(0x14a)).toBe(false);
    expect(isMissingHandle(0x7018b)).toBe(false); // another layer
  });
});
