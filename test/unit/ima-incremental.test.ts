import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { appraiseImaIncrement, initialImaState, parseImaList, replayImaPcr10, type ImaAppraisalState } from '../../daemon/verify/ima/index.js';
import type { HashAlg } from '../../daemon/verify/tpm-alg.js';
import { fileDigest, ngLine, syntheticList, violationLine } from './ima-helpers.js';

const banks: HashAlg[] = ['sha1', 'sha256', 'sha384'];
const list = Buffer.from(syntheticList(40) + violationLine('/var/log/x') + ngLine('/opt/a b c', fileDigest(77), { template: 'ima-sig' }));
const full = replayImaPcr10(parseImaList(list), { banks });
const total = full.entries;

function hexes(m: Map<HashAlg, Buffer>): Record<string, string> {
  return Object.fromEntries([...m].map(([a, v]) => [a, v.toString('hex')]));
}

describe('incremental IMA appraisal', () => {
  it('equals a full replay when the whole list is re-read at random growth points', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.nat({ max: list.length }), { maxLength: 8 }), (cuts) => {
        let state: ImaAppraisalState | undefined;
        let seen = 0;
        for (const cut of [...cuts.sort((a, b) => a - b), list.length]) {
          const step = appraiseImaIncrement(state, { list: list.subarray(0, cut), banks });
          expect(step.restarted).toBe(false);
          expect(step.newEntries[0]?.line ?? seen + 1).toBe(seen + 1);
          seen += step.newEntries.length;
          expect(step.state.byteOffset + step.pendingBytes).toBe(cut);
          state = step.state;
        }
        expect(state?.entriesSeen).toBe(total);
        expect(state?.byteOffset).toBe(list.length);
        expect(hexes(state?.pcr10 ?? new Map())).toEqual(hexes(full.pcr10));
      }),
      { numRuns: 60 },
    );
  });

  it('equals a full replay when only the tails are passed', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.nat({ max: list.length }), { maxLength: 8 }), (cuts) => {
        let state = initialImaState(banks);
        for (const cut of [...cuts.sort((a, b) => a - b), list.length]) {
          if (cut < state.byteOffset) continue;
          const tail = list.subarray(state.byteOffset, cut);
          state = appraiseImaIncrement(state, { list: tail, tailOffset: state.byteOffset, tailFirstEntry: state.entriesSeen, banks }).state;
        }
        expect(state.entriesSeen).toBe(total);
        expect(hexes(state.pcr10)).toEqual(hexes(full.pcr10));
      }),
      { numRuns: 60 },
    );
  });

  it('starts over when the list got shorter (reset) or differs before the offset (replaced)', () => {
    const first = appraiseImaIncrement(undefined, { list, banks }).state;
    const rebooted = Buffer.from(syntheticList(3));
    const reset = appraiseImaIncrement(first, { list: rebooted, banks });
    expect(reset.restarted).toBe(true);
    expect(reset.restartReason).toMatch(/the log was reset/);
    expect(hexes(reset.state.pcr10)).toEqual(hexes(replayImaPcr10(parseImaList(rebooted), { banks }).pcr10));

    const other = Buffer.from(ngLine('boot_aggregate', fileDigest(1000)) + syntheticList(60));
    const replaced = appraiseImaIncrement(first, { list: other, banks });
    expect(replaced.restarted).toBe(true);
    expect(replaced.restartReason).toMatch(/replaced/);
    expect(replaced.state.entriesSeen).toBe(61);
  });

  it('detects a replaced last line even when the line count and length agree', () => {
    const a = Buffer.from(ngLine('/x', fileDigest(1)) + ngLine('/y', fileDigest(2)));
    const b = Buffer.from(ngLine('/x', fileDigest(1)) + ngLine('/z', fileDigest(2)) + ngLine('/w', fileDigest(3)));
    const state = appraiseImaIncrement(undefined, { list: a, banks: ['sha256'] }).state;
    const next = appraiseImaIncrement(state, { list: b, banks: ['sha256'] });
    expect(next.restartReason).toMatch(/IMA line 2 differs/);
    expect(next.state.entriesSeen).toBe(3);
  });

  it('refuses a tail that does not start where the state ends', () => {
    const state = appraiseImaIncrement(undefined, { list: list.subarray(0, 400), banks }).state;
    const tail = list.subarray(state.byteOffset + 1);
    expect(() => appraiseImaIncrement(state, { list: tail, tailOffset: state.byteOffset + 1, tailFirstEntry: state.entriesSeen, banks })).toThrow(
      expect.objectContaining({ code: 'IMA_MALFORMED' }),
    );
    expect(() => appraiseImaIncrement(state, { list: tail, tailOffset: state.byteOffset, tailFirstEntry: state.entriesSeen + 1, banks })).toThrow(
      expect.objectContaining({ code: 'IMA_MALFORMED' }),
    );
  });

  it('names the whole-list line number of a tampered entry in the tail', () => {
    const state = appraiseImaIncrement(undefined, { list: list.subarray(0, 1000), banks }).state;
    const tampered = Buffer.from(list);
    const at = tampered.indexOf('/usr/lib/file-30');
    tampered[at + 1] = 0x55; // 'u' -> 'U'
    expect(() => appraiseImaIncrement(state, { list: tampered, banks })).toThrow(
      expect.objectContaining({ code: 'IMA_TEMPLATE_HASH_MISMATCH', message: expect.stringMatching(/^IMA line 31 /) }),
    );
  });

  it('refuses a state that is malformed or for other banks', () => {
    const good = appraiseImaIncrement(undefined, { list, banks }).state;
    const bad: ImaAppraisalState[] = [
      { ...good, entriesSeen: -1 },
      { ...good, byteOffset: 0 },
      { ...good, pcr10: new Map([['sha256', Buffer.alloc(32)]]) },
      { ...good, pcr10: new Map([...good.pcr10].map(([a]) => [a, Buffer.alloc(3)])) },
      { ...good, lastLineHash: Buffer.alloc(5) },
    ];
    for (const s of bad) expect(() => appraiseImaIncrement(s, { list, banks })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
