import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  bootAggregateDigest,
  compareImaPcr10,
  parseImaList,
  replayImaPcr10,
  verifyBootAggregate,
  verifyImaReplay,
} from '../../daemon/verify/ima/index.js';
import type { PcrBank } from '../../daemon/verify/pcr.js';
import { digestSize, type HashAlg } from '../../daemon/verify/tpm-alg.js';
import { extend, fileDigest, legacyLine, ngLine, ngTemplateData, syntheticList, violationLine } from './ima-helpers.js';

const sig = Buffer.from('0302041122', 'hex');
const mixed =
  ngLine('boot_aggregate', fileDigest(0)) +
  legacyLine('/sbin/init', fileDigest(1, 'sha1')) +
  ngLine('/bin/bash', fileDigest(2), { template: 'ima-sig', sig }) +
  violationLine('/var/log/open-writer') +
  ngLine('/usr/bin/python3', fileDigest(3, 'sha512'), { alg: 'sha512' });

/** Reference replay, written from the kernel's rules independently of replay.ts. */
function referencePcr10(alg: HashAlg): Buffer {
  const data: (Buffer | 'violation')[] = [
    ngTemplateData('sha256', fileDigest(0), 'boot_aggregate'),
    (() => {
      const name = Buffer.alloc(256);
      name.write('/sbin/init');
      return Buffer.concat([fileDigest(1, 'sha1'), name]);
    })(),
    ngTemplateData('sha256', fileDigest(2), '/bin/bash', sig),
    'violation',
    ngTemplateData('sha512', fileDigest(3, 'sha512'), '/usr/bin/python3'),
  ];
  let pcr: Buffer = Buffer.alloc(digestSize(alg));
  for (const d of data) {
    pcr = extend(alg, pcr, d === 'violation' ? Buffer.alloc(digestSize(alg), 0xff) : createHash(alg).update(d).digest());
  }
  return pcr;
}

function quoted(values: Partial<Record<HashAlg, Buffer>>): PcrBank[] {
  return Object.entries(values).map(([alg, v]) => ({ alg: alg as HashAlg, values: new Map([[10, v]]) }));
}

describe('IMA PCR 10 replay', () => {
  const entries = parseImaList(mixed);
  const banks: HashAlg[] = ['sha1', 'sha256', 'sha384'];

  it('matches a reference replay in sha1, sha256 and sha384 banks', () => {
    const replay = replayImaPcr10(entries, { banks });
    expect(replay.violations).toBe(1);
    for (const alg of banks) expect(replay.pcr10.get(alg)?.toString('hex')).toBe(referencePcr10(alg).toString('hex'));
  });

  it('verifies against quoted values and refuses a changed one', () => {
    const good = { sha256: referencePcr10('sha256'), sha384: referencePcr10('sha384') };
    expect(verifyImaReplay(entries, quoted(good), { banks: ['sha256', 'sha384'] }).entries).toBe(5);
    const bad = Buffer.from(good.sha384);
    bad[0] = (bad[0] ?? 0) ^ 1;
    expect(() => verifyImaReplay(entries, quoted({ ...good, sha384: bad }), { banks: ['sha256', 'sha384'] })).toThrow(
      expect.objectContaining({ code: 'IMA_REPLAY_MISMATCH', message: expect.stringContaining('sha384 PCR 10') }),
    );
  });

  it('refuses a list missing its last entry, and a quote without the bank', () => {
    const good = quoted({ sha256: referencePcr10('sha256') });
    expect(() => verifyImaReplay(entries.slice(0, 4), good, { banks: ['sha256'] })).toThrow(expect.objectContaining({ code: 'IMA_REPLAY_MISMATCH' }));
    expect(() => compareImaPcr10(replayImaPcr10(entries, { banks: ['sha384'] }).pcr10, good)).toThrow(/no quoted sha384 PCR 10/);
  });

  it('replays the SHA-1 bank against a quote only when asked', () => {
    const q = quoted({ sha1: referencePcr10('sha1') });
    expect(() => verifyImaReplay(entries, q, { banks: ['sha1'] })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(verifyImaReplay(entries, q, { banks: ['sha1'], allowSha1Bank: true }).violations).toBe(1);
  });

  it('refuses entries on another PCR', () => {
    const other = parseImaList(ngLine('/a', fileDigest(1), { pcr: 11 }));
    expect(() => replayImaPcr10(other, { banks: ['sha256'] })).toThrow(/IMA line 1: entry extends PCR 11/);
  });

  it('continues from a start value, and extends the zero-padded SHA-1 hash for pre-5.8 kernels', () => {
    const half = replayImaPcr10(entries.slice(0, 2), { banks: ['sha256'] });
    const rest = replayImaPcr10(entries.slice(2), { banks: ['sha256'], start: half.pcr10 });
    expect(rest.pcr10.get('sha256')?.equals(referencePcr10('sha256'))).toBe(true);

    const padded = replayImaPcr10(entries.slice(0, 1), { banks: ['sha256'], sha1PaddedBanks: true });
    const th = Buffer.concat([entries[0]?.templateHash ?? Buffer.alloc(0), Buffer.alloc(12)]);
    expect(padded.pcr10.get('sha256')?.equals(extend('sha256', Buffer.alloc(32), th))).toBe(true);
  });

  it('replays 100,000 ima-ng entries quickly', () => {
    const text = syntheticList(100_000);
    let t = performance.now();
    const parsed = parseImaList(text);
    const parseMs = performance.now() - t;
    t = performance.now();
    const replay = replayImaPcr10(parsed, { banks: ['sha1', 'sha256'] });
    const replayMs = performance.now() - t;
    t = performance.now();
    replayImaPcr10(parsed, { banks: ['sha256', 'sha384'] });
    const replay2Ms = performance.now() - t;
    console.log(`IMA 100k entries: parse+template check ${parseMs.toFixed(0)} ms, replay sha1+sha256 ${replayMs.toFixed(0)} ms, sha256+sha384 ${replay2Ms.toFixed(0)} ms`);
    expect(replay.entries).toBe(100_000);
    // Generous against a loaded shared machine; the target is 1 s.
    expect(replayMs).toBeLessThan(5000);
  });
});

describe('boot_aggregate', () => {
  const pcrs = (alg: HashAlg): PcrBank => ({
    alg,
    values: new Map(Array.from({ length: 10 }, (_, i) => [i, createHash(alg).update(`pcr ${i}`).digest()])),
  });

  it('hashes PCRs 0-7 for SHA-1 and 0-9 otherwise', () => {
    const b1 = pcrs('sha1');
    const ref1 = createHash('sha1');
    for (let i = 0; i < 8; i++) ref1.update(b1.values.get(i) ?? Buffer.alloc(0));
    expect(bootAggregateDigest(b1).equals(ref1.digest())).toBe(true);
    const b256 = pcrs('sha256');
    const ref256 = createHash('sha256');
    for (let i = 0; i < 10; i++) ref256.update(b256.values.get(i) ?? Buffer.alloc(0));
    expect(bootAggregateDigest(b256).equals(ref256.digest())).toBe(true);
  });

  it('checks the entry against the quoted bank and refuses a mismatch', () => {
    const bank = pcrs('sha256');
    const [entry] = parseImaList(ngLine('boot_aggregate', bootAggregateDigest(bank)));
    expect(() => verifyBootAggregate(entry, [bank])).not.toThrow();
    expect(() => verifyBootAggregate(entry, [bank], { pre58Kernel: true })).toThrow(expect.objectContaining({ code: 'IMA_REPLAY_MISMATCH' }));
    expect(() => verifyBootAggregate(entry, [pcrs('sha384')])).toThrow(/no quoted sha256 bank/);
    const [violation] = parseImaList(violationLine('boot_aggregate'));
    expect(() => verifyBootAggregate(violation, [bank])).toThrow(/violation/);
  });
});
