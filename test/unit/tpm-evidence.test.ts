/**
 * The parts of daemon/evidence/tpm that need no TPM: the AK template, response-code
 * classification, the PCR_Read response decoder, the quote retry loop and the queue.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { akTemplate, akTemplate2b, matchesAkTemplate } from '../../daemon/evidence/tpm/ak-template.js';
import { applyPcrRead, normaliseSelections, parseDigestList } from '../../daemon/evidence/tpm/pcr-read.js';
import { SerialQueue } from '../../daemon/base/serial-queue.js';
import { classifyRc, isTransientTpmWarning, rcError } from '../../daemon/evidence/tpm/rc.js';
import { sameBanks, stableQuote } from '../../daemon/evidence/tpm/stable-quote.js';
import { encodePcrSelection, type PcrBank, type PcrSelection } from '../../daemon/verify/pcr.js';
import { TpmWriter } from '../../daemon/verify/tpm-reader.js';

function digestList(digests: Buffer[]): Buffer {
  const w = new TpmWriter().u32(digests.length);
  for (const d of digests) w.tpm2b(d);
  return w.finish();
}

function emptyBanks(sels: PcrSelection[]): PcrBank[] {
  return sels.map((s) => ({ alg: s.alg, values: new Map<number, Buffer>() }));
}

describe('AK template', () => {
  it('is the fixed ECC P-256 restricted signing template, noDA', () => {
    // type ECC, nameAlg SHA-256, attributes 0x00050472 (noDA is 0x400), no policy, symmetric
    // NULL, scheme ECDSA/SHA-256, curve P-256, kdf NULL, empty x and y.
    expect(akTemplate().toString('hex')).toBe('0023000b000504720000' + '0010' + '0018000b' + '0003' + '0010' + '00000000');
    expect(akTemplate2b().toString('hex')).toBe('0018' + akTemplate().toString('hex'));
  });

  it('recognises a created key by everything but its public point', () => {
    const point = new TpmWriter().tpm2b(Buffer.alloc(32, 1)).tpm2b(Buffer.alloc(32, 2)).finish();
    const created = Buffer.concat([akTemplate().subarray(0, 20), point]);
    expect(matchesAkTemplate(created)).toBe(true);
    const otherAttributes = Buffer.from(created);
    otherAttributes[7] = (otherAttributes[7] ?? 0) & ~0x40; // no userWithAuth
    expect(matchesAkTemplate(otherAttributes)).toBe(false);
    const dictionaryProtected = Buffer.from(created);
    dictionaryProtected[6] = (dictionaryProtected[6] ?? 0) & ~0x04; // no noDA
    expect(matchesAkTemplate(dictionaryProtected)).toBe(false);
    expect(matchesAkTemplate(akTemplate())).toBe(false);
  });
});

describe('classifyRc', () => {
  it.each([
    [0x000a000a, 'TPM_UNAVAILABLE'], // TCTI IO error
    [0x000a0015, 'TPM_UNAVAILABLE'], // TCTI not supported (e.g. no tabrmd)
    [0x0007000a, 'TPM_UNAVAILABLE'], // ESYS IO error
    [0x00070008, 'TPM_UNAVAILABLE'], // ESYS no connection
    [0x000b0001, 'TPM_UNAVAILABLE'], // resource manager
    [0x00000101, 'TPM_COMMAND_FAILED'], // TPM_RC_FAILURE
    [0x0000098e, 'TPM_COMMAND_FAILED'], // TPM_RC_AUTH_FAIL on session 1
    [0x000c0902, 'TPM_COMMAND_FAILED'], // TPM error relayed by a resource manager
    [0x00070005, 'INTERNAL'], // ESYS bad reference: a bug on our side
    [0x0009000b, 'INTERNAL'], // MU bad value
  ])('rc %d is %s', (rc, want) => {
    expect(classifyRc(rc)).toBe(want);
  });

  it('treats only RETRY, YIELDED and TESTING as worth resending', () => {
    expect([0x922, 0x908, 0x90a].map(isTransientTpmWarning)).toEqual([true, true, true]);
    expect([0, 0x101, 0x902, 0x000a0922].map(isTransientTpmWarning)).toEqual([false, false, false, false]);
  });

  it('keeps the numeric code and the decoded text in the message', () => {
    const err = rcError('Esys_Quote', 0x0000098e, () => 'tpm:session(1):authorization failure');
    expect(err.code).toBe('TPM_COMMAND_FAILED');
    expect(err.message).toBe('Esys_Quote failed: 0x0000098e tpm:session(1):authorization failure');
  });
});

describe('normaliseSelections', () => {
  it('sorts and de-duplicates PCR indices', () => {
    expect(normaliseSelections([{ alg: 'sha256', pcrs: [16, 0, 16, 7] }])).toEqual([{ alg: 'sha256', pcrs: [0, 7, 16] }]);
  });

  it.each([
    [[]],
    [[{ alg: 'sha256', pcrs: [] }]],
    [[{ alg: 'sha256', pcrs: [24] }]],
    [[{ alg: 'sha256', pcrs: [-1] }]],
    [[{ alg: 'sha256', pcrs: [1.5] }]],
    [[{ alg: 'md5', pcrs: [0] }]],
    [[{ alg: 'sha256', pcrs: [0] }, { alg: 'sha256', pcrs: [1] }]],
  ])('refuses %j', (sels) => {
    expect(() => normaliseSelections(sels as never)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('PCR_Read responses', () => {
  const d = (fill: number, size = 32) => Buffer.alloc(size, fill);

  it('files a partial answer and leaves the rest pending', () => {
    const sels = normaliseSelections([{ alg: 'sha256', pcrs: [0, 1, 2] }, { alg: 'sha1', pcrs: [5] }]);
    const banks = emptyBanks(sels);
    const got = applyPcrRead(encodePcrSelection([{ alg: 'sha256', pcrs: [0, 2] }]), digestList([d(0), d(2)]), sels, banks);
    expect(got).toBe(2);
    expect(sels).toEqual([{ alg: 'sha256', pcrs: [1] }, { alg: 'sha1', pcrs: [5] }]);
    expect(banks[0]?.values).toEqual(new Map([[0, d(0)], [2, d(2)]]));
    expect(applyPcrRead(encodePcrSelection([{ alg: 'sha256', pcrs: [1] }, { alg: 'sha1', pcrs: [5] }]),
      digestList([d(1), d(5, 20)]), sels, banks)).toBe(2);
    expect(banks[1]?.values.get(5)).toEqual(d(5, 20));
  });

  it.each([
    ['a PCR that was not asked for', [{ alg: 'sha256', pcrs: [3] }], [d(3)]],
    ['a bank that was not asked for', [{ alg: 'sha384', pcrs: [0] }], [d(0, 48)]],
    ['fewer digests than selected', [{ alg: 'sha256', pcrs: [0, 1] }], [d(0)]],
    ['more digests than selected', [{ alg: 'sha256', pcrs: [0] }], [d(0), d(1)]],
    ['a digest of the wrong size', [{ alg: 'sha256', pcrs: [0] }], [d(0, 20)]],
  ] as const)('refuses %s', (_what, returned, digests) => {
    const sels = normaliseSelections([{ alg: 'sha256', pcrs: [0, 1] }]);
    expect(() => applyPcrRead(encodePcrSelection(returned.map((r) => ({ alg: r.alg, pcrs: [...r.pcrs] }))),
      digestList([...digests]), sels, emptyBanks(sels))).toThrow(expect.objectContaining({ code: 'TPM_COMMAND_FAILED' }));
  });

  it('bounds the digest count before reading', () => {
    const nine = digestList(Array.from({ length: 9 }, () => d(0)));
    expect(() => parseDigestList(nine)).toThrow(expect.objectContaining({ code: 'TPM_COMMAND_FAILED' }));
    expect(() => parseDigestList(Buffer.from('ffffffff', 'hex'))).toThrow(AttestdError);
  });

  it('only ever throws AttestdError on arbitrary response bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 400 }), (sel, dig) => {
        const sels = normaliseSelections([{ alg: 'sha256', pcrs: [0, 1, 2] }, { alg: 'sha1', pcrs: [0] }]);
        try {
          const got = applyPcrRead(sel, dig, sels, emptyBanks(sels));
          expect(got).toBeLessThanOrEqual(4);
        } catch (err) {
          expect(err).toBeInstanceOf(AttestdError);
          expect((err as AttestdError).code).toBe('TPM_COMMAND_FAILED');
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('stableQuote', () => {
  const bankOf = (v: number): PcrBank[] => [{ alg: 'sha256', values: new Map([[0, Buffer.alloc(32, v)]]) }];

  it('takes one quote when the PCRs hold still', async () => {
    let quotes = 0;
    const r = await stableQuote(async () => bankOf(1), async () => ++quotes, 3);
    expect(r).toMatchObject({ quote: 1, attempts: 1, stable: true });
  });

  it('retries while an extend races the quote, then settles', async () => {
    const reads = [1, 2, 2, 3, 3, 3];
    const r = await stableQuote(async () => bankOf(reads.shift() ?? 9), async () => 'q', 3);
    expect(r).toMatchObject({ attempts: 3, stable: true, banks: bankOf(3) });
  });

  it('gives up after the retries and returns the last attempt', async () => {
    let v = 0;
    let quotes = 0;
    const r = await stableQuote(async () => bankOf(v++), async () => ++quotes, 3);
    expect(r).toMatchObject({ quote: 4, attempts: 4, stable: false, banks: bankOf(7) });
  });

  it('compares banks by algorithm, index and value', () => {
    expect(sameBanks(bankOf(1), bankOf(1))).toBe(true);
    expect(sameBanks(bankOf(1), bankOf(2))).toBe(false);
    expect(sameBanks(bankOf(1), [{ alg: 'sha1', values: bankOf(1)[0]?.values ?? new Map() }])).toBe(false);
    expect(sameBanks(bankOf(1), [{ alg: 'sha256', values: new Map([[1, Buffer.alloc(32, 1)]]) }])).toBe(false);
    expect(sameBanks(bankOf(1), [])).toBe(false);
  });
});

describe('SerialQueue', () => {
  it('runs jobs one at a time in order, past failures', async () => {
    const q = new SerialQueue();
    const log: string[] = [];
    let running = 0;
    const job = (name: string, fail = false) => async () => {
      running++;
      expect(running).toBe(1);
      log.push(`start ${name}`);
      await new Promise((r) => setTimeout(r, 2));
      log.push(`end ${name}`);
      running--;
      if (fail) throw new Error(name);
      return name;
    };
    const results = await Promise.allSettled([q.run(job('a')), q.run(job('b', true)), q.run(job('c'))]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  });
});
