// Every recorded IMA list under shared/fixtures/tcg-eventlog/ima (SOURCES.md rows for
// keylime and rust-keylime) replays to its .expected_pcr10.json; the NEGATIVE one is refused.
import { describe, expect, it } from 'vitest';
import { parseImaList, verifyImaReplay } from '../../daemon/verify/ima/index.js';
import type { PcrBank } from '../../daemon/verify/pcr.js';
import type { HashAlg } from '../../daemon/verify/tpm-alg.js';
import { imaFixture, imaFixtureNames } from './ima-helpers.js';

interface Expected {
  entries: number;
  template_hash_mismatches: number;
  violations: number;
  pcrs: Record<string, Record<string, string>>;
}

const names = imaFixtureNames();
const lists = names.filter((n) => n.endsWith('.txt') && !n.includes('NEGATIVE'));
const negatives = names.filter((n) => n.includes('NEGATIVE'));

function expectedOf(list: string): Expected {
  return JSON.parse(imaFixture(list.replace(/\.txt$/, '.expected_pcr10.json')).toString('utf8')) as Expected;
}

function quotedBanks(e: Expected): PcrBank[] {
  return Object.entries(e.pcrs).map(([alg, values]) => ({
    alg: alg as HashAlg,
    values: new Map(Object.entries(values).map(([i, hex]) => [Number(i), Buffer.from(hex, 'hex')])),
  }));
}

describe('IMA fixtures', () => {
  it('covers every file in the fixture folder', () => {
    expect(lists.length).toBe(5);
    expect(negatives).toEqual(['rustkeylime_invalid_ima_log_NEGATIVE.txt']);
    for (const n of names) {
      const covered =
        lists.includes(n) || negatives.includes(n) || (n.endsWith('.expected_pcr10.json') && lists.includes(n.replace('.expected_pcr10.json', '.txt')));
      expect(covered, n).toBe(true);
    }
  });

  it.each(lists)('%s replays to its expected PCR 10 in every bank', (name) => {
    const expected = expectedOf(name);
    const entries = parseImaList(imaFixture(name));
    expect(entries.length).toBe(expected.entries);
    const banks = Object.keys(expected.pcrs) as HashAlg[];
    const replay = verifyImaReplay(entries, quotedBanks(expected), { banks, allowSha1Bank: true });
    expect(replay.violations).toBe(expected.violations);
    for (const alg of banks) expect(replay.pcr10.get(alg)?.toString('hex')).toBe(expected.pcrs[alg]?.['10']);
    expect(entries[0]?.path).toBe('boot_aggregate');
  });

  it('reads the keylime logs with sha1, sha256 and sha384 file digests', () => {
    for (const alg of ['sha1', 'sha256', 'sha384']) {
      const entries = parseImaList(imaFixture(`keylime_synthetic_ima-log-${alg}.txt`));
      expect(entries.map((e) => [e.digestAlg, e.path])).toEqual([
        [alg, 'boot_aggregate'],
        [alg, '/data'],
      ]);
      // The all-zero template hash on boot_aggregate is a violation in the sha1 and sha384 logs.
      expect(entries[0]?.violation).toBe(alg !== 'sha256');
      expect(entries[1]?.violation).toBe(false);
    }
  });

  it('finds all 826 ima-ng entries of the rust-keylime list with their paths', () => {
    const entries = parseImaList(imaFixture('rustkeylime_ascii_runtime_measurements_ima-ng_sha1.txt'));
    expect(entries[1]).toMatchObject({ line: 2, pcr: 10, template: 'ima-ng', digestAlg: 'sha1', path: '/init' });
    expect(entries[825]?.path).toBe('/bin/cp');
    expect(entries.every((e) => !e.violation && e.pathIsUtf8)).toBe(true);
  });

  it.each(negatives)('%s is refused naming line 1', (name) => {
    expect(() => parseImaList(imaFixture(name))).toThrow(
      expect.objectContaining({ code: 'IMA_MALFORMED', message: expect.stringMatching(/^IMA line 1: /) }),
    );
  });

  it('a fixture does not verify against the PCR 10 of another', () => {
    const entries = parseImaList(imaFixture(lists[0] ?? ''));
    const other = expectedOf(lists[1] ?? '');
    expect(() => verifyImaReplay(entries, quotedBanks(other), { banks: ['sha256'] })).toThrow(
      expect.objectContaining({ code: 'IMA_REPLAY_MISMATCH' }),
    );
  });
});
