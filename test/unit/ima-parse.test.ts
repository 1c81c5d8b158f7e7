import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { IMA_MAX_LINE_BYTES, parseImaLines, parseImaList, replayImaPcr10 } from '../../daemon/verify/ima/index.js';
import { fileDigest, imaFixture, legacyLine, ngLine, ngTemplateData, syntheticList, violationLine } from './ima-helpers.js';

function failure(fn: () => unknown): AttestdError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AttestdError) return err;
    throw err;
  }
  throw new Error('expected an AttestdError');
}

const realList = imaFixture('rustkeylime_ascii_runtime_measurements_ima-ng_sha1.txt');

describe('IMA templates', () => {
  it('reads ima-ng with the kernel serialisation', () => {
    const d = fileDigest(1, 'sha384');
    const [e] = parseImaList(ngLine('/usr/bin/a b', d, { alg: 'sha384' }));
    expect(e).toMatchObject({ line: 1, pcr: 10, template: 'ima-ng', digestAlg: 'sha384', path: '/usr/bin/a b', violation: false });
    expect(e?.digest.equals(d)).toBe(true);
    expect(e?.templateData.equals(ngTemplateData('sha384', d, '/usr/bin/a b'))).toBe(true);
    expect(e?.templateHashAlg).toBe('sha1');
  });

  it('reads ima-sig with a signature, an empty one and a stripped trailing separator', () => {
    const sig = Buffer.from('030204abcdef', 'hex');
    const withSig = parseImaList(ngLine('/bin/x y', fileDigest(2), { template: 'ima-sig', sig }))[0];
    expect(withSig?.extra?.equals(sig)).toBe(true);
    expect(withSig?.path).toBe('/bin/x y');
    const empty = ngLine('/bin/z', fileDigest(3), { template: 'ima-sig' });
    expect(empty.endsWith('/bin/z \n')).toBe(true);
    const a = parseImaList(empty)[0];
    const b = parseImaList(empty.replace(' \n', '\n'))[0];
    for (const e of [a, b]) {
      expect(e?.extra?.length).toBe(0);
      expect(e?.path).toBe('/bin/z');
    }
  });

  it('reads the legacy ima template with its 256-byte name field', () => {
    const d = fileDigest(4, 'sha1');
    const [e] = parseImaList(legacyLine('/sbin/init', d));
    expect(e).toMatchObject({ template: 'ima', digestAlg: 'sha1', path: '/sbin/init' });
    expect(e?.templateData.length).toBe(276);
    expect(() => parseImaList(legacyLine('/' + 'a'.repeat(255), d))).toThrow(/at most 255/);
  });

  it('reads ima-buf entries', () => {
    const buf = Buffer.from('kexec cmdline');
    const th = createHash('sha1').update(ngTemplateData('sha256', fileDigest(5), 'kexec-cmdline', buf)).digest('hex');
    const line = `10 ${th} ima-buf sha256:${fileDigest(5).toString('hex')} kexec-cmdline ${buf.toString('hex')}\n`;
    expect(parseImaList(line)[0]?.extra?.toString()).toBe('kexec cmdline');
  });

  it('reads PCRs below 10 printed with a leading space, and marks violations', () => {
    const entries = parseImaList(ngLine('/a', fileDigest(6), { pcr: 9 }) + violationLine('/var/log/x'));
    expect(entries.map((e) => [e.line, e.pcr, e.violation])).toEqual([
      [1, 9, false],
      [2, 10, true],
    ]);
  });

  it('keeps non-UTF-8 names byte-exact and flags them', () => {
    const raw = Buffer.from('/tmp/\xff\xfe', 'latin1');
    const d = fileDigest(7);
    const dng = Buffer.concat([Buffer.from('sha256:\0', 'latin1'), d]);
    const nng = Buffer.concat([raw, Buffer.from([0])]);
    const len = (n: number): Buffer => Buffer.from(Uint32Array.of(n).buffer);
    const th = createHash('sha1').update(Buffer.concat([len(dng.length), dng, len(nng.length), nng])).digest('hex');
    const line = Buffer.concat([Buffer.from(`10 ${th} ima-ng sha256:${d.toString('hex')} `), raw, Buffer.from('\n')]);
    const [e] = parseImaList(line);
    expect(e?.pathIsUtf8).toBe(false);
    expect(e?.pathBytes.equals(raw)).toBe(true);
  });

  it('accepts an empty list', () => {
    expect(parseImaList('')).toEqual([]);
  });
});

describe('IMA parser refuses tampered and hostile input, naming the line', () => {
  const lines = realList.toString('latin1').split('\n');

  it('a changed file digest breaks the template hash of that line', () => {
    const tampered = [...lines];
    tampered[56] = (tampered[56] ?? '').replace(/sha1:([0-9a-f])/, (_m, c: string) => `sha1:${c === '0' ? '1' : '0'}`);
    const err = failure(() => parseImaList(tampered.join('\n')));
    expect(err.code).toBe('IMA_TEMPLATE_HASH_MISMATCH');
    expect(err.message).toContain('IMA line 57 (');
  });

  it('a changed path breaks the template hash', () => {
    const err = failure(() => parseImaList(ngLine('/bin/ls', fileDigest(1)).replace('/bin/ls', '/bin/sh')));
    expect(err.code).toBe('IMA_TEMPLATE_HASH_MISMATCH');
    expect(err.message).toContain('/bin/sh');
  });

  it('a truncated last line is refused, and reported as pending by parseImaLines', () => {
    const cut = realList.subarray(0, realList.length - 10);
    const err = failure(() => parseImaList(cut));
    expect(err.code).toBe('IMA_MALFORMED');
    expect(err.message).toContain('IMA line 826:');
    const partial = parseImaLines(cut);
    expect(partial.entries.length).toBe(825);
    expect(partial.pending).toBeGreaterThan(0);
  });

  it('a line cut inside its template hash is malformed', () => {
    const err = failure(() => parseImaList(lines.slice(0, 3).join('\n') + '\n10 1d8d532d46\n'));
    expect(err.code).toBe('IMA_MALFORMED');
    expect(err.message).toMatch(/^IMA line 4: /);
  });

  it.each([
    ['garbage', 'this-is-not-ima\n', /IMA line 1: /],
    ['an empty line', ngLine('/a', fileDigest(1)) + '\n', /IMA line 2: empty line/],
    ['PCR 24', ngLine('/a', fileDigest(1)).replace(/^10/, '24'), /bad PCR index/],
    ['PCR 010', '0' + ngLine('/a', fileDigest(1)), /does not start with a PCR index/],
    ['PCR " 10"', ' ' + ngLine('/a', fileDigest(1)), /does not start with a PCR index/],
    ['PCR 09', ngLine('/a', fileDigest(1), { pcr: 9 }).replace(' 9', '09'), /bad PCR index/],
    ['uppercase hex', ngLine('/a', fileDigest(1)).replace(/ [0-9a-f]{40} /, (m) => m.toUpperCase()), /not lowercase hex/],
    ['a short template hash', ngLine('/a', fileDigest(1)).replace(/ ([0-9a-f]{40}) /, (_m, h: string) => ` ${h.slice(2)} `), /digest size/],
    ['an unknown template', ngLine('/a', fileDigest(1)).replace('ima-ng', 'ima-xx\x1b[31m'), /unsupported template "ima-xx\\x1b\[31m"/],
    ['an unknown digest algorithm', ngLine('/a', fileDigest(1)).replace('sha256:', 'md9:'), /unknown file digest algorithm/],
    ['a digest of the wrong size', ngLine('/a', fileDigest(1, 'sha1')).replace('sha1:', 'sha256:'), /must be 64 hex digits/],
    ['no name', `10 ${'ab'.repeat(20)} ima-ng sha1:${'00'.repeat(20)} \n`, /empty file name/],
    ['a NUL in the name', ngLine('/a\0b', fileDigest(1)), /NUL/],
    ['no template data', `10 ${'ab'.repeat(20)} ima-ng\n`, /no template data/],
  ])('%s', (_what, text, message) => {
    const err = failure(() => parseImaList(text));
    expect(err.code).toBe('IMA_MALFORMED');
    expect(err.message).toMatch(message);
  });

  it('bounds line length, entry count and total size', () => {
    const long = ngLine('/' + 'a'.repeat(IMA_MAX_LINE_BYTES), fileDigest(1));
    expect(failure(() => parseImaList(long)).message).toMatch(/IMA line 1: longer than 8192 bytes/);
    expect(failure(() => parseImaList('x'.repeat(20_000))).message).toMatch(/IMA line 1: longer than/);
    expect(failure(() => parseImaList(syntheticList(5), { maxEntries: 4 })).message).toMatch(/IMA line 5: more than 4 entries/);
    expect(failure(() => parseImaList(syntheticList(5), { maxListBytes: 100 })).code).toBe('IMA_MALFORMED');
    expect(failure(() => parseImaList('', { maxEntries: 2_000_000 })).code).toBe('INVALID_ARGUMENT');
  });
});

describe('IMA parser under fuzzing', () => {
  const onlyAttestdErrors = (input: Uint8Array | string): void => {
    try {
      parseImaList(input);
    } catch (err) {
      if (!(err instanceof AttestdError)) throw err;
      expect(['IMA_MALFORMED', 'IMA_TEMPLATE_HASH_MISMATCH']).toContain(err.code);
    }
  };
  const sample = Buffer.from(syntheticList(4) + legacyLine('/l', fileDigest(9, 'sha1')) + ngLine('/s', fileDigest(8), { template: 'ima-sig', sig: Buffer.from('0302', 'hex') }) + violationLine('/v'));

  it('throws only AttestdError on random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => onlyAttestdErrors(bytes)), { numRuns: 500 });
  });

  it('throws only AttestdError on lines made of IMA-like tokens', () => {
    const token = fc.constantFrom('10', ' 9', 'ima', 'ima-ng', 'ima-sig', 'ima-buf', 'sha1:', 'sha256:', '0'.repeat(40), 'ab', ' ', '\n', '/', ':', '\0', '\xff');
    fc.assert(fc.property(fc.array(token, { maxLength: 40 }), (tokens) => onlyAttestdErrors(tokens.join(''))), { numRuns: 500 });
  });

  it('throws only AttestdError on mutations of a valid list, and never accepts a changed byte silently', () => {
    const mutation = fc.record({ at: fc.nat({ max: sample.length - 1 }), byte: fc.integer({ min: 0, max: 255 }), del: fc.nat({ max: 3 }) });
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (muts) => {
        let buf = Buffer.from(sample);
        for (const m of muts) {
          const at = Math.min(m.at, buf.length - 1);
          buf = Buffer.concat([buf.subarray(0, at), Buffer.from([m.byte]), buf.subarray(at + 1 + m.del)]);
        }
        onlyAttestdErrors(buf);
      }),
      { numRuns: 500 },
    );
  });

  it('a single changed byte is caught by the parser or the replay', () => {
    const list = Buffer.from(syntheticList(3));
    const reference = replayImaPcr10(parseImaList(list), { banks: ['sha256'] }).pcr10.get('sha256');
    fc.assert(
      fc.property(fc.nat({ max: list.length - 1 }), fc.integer({ min: 0, max: 255 }), (at, byte) => {
        fc.pre(list[at] !== byte);
        const copy = Buffer.from(list);
        copy[at] = byte;
        let replayed: Buffer | undefined;
        try {
          replayed = replayImaPcr10(parseImaList(copy), { banks: ['sha256'] }).pcr10.get('sha256');
        } catch (err) {
          expect(err).toBeInstanceOf(AttestdError);
          return;
        }
        // The PCR column is not hashed, but any PCR other than 10 is refused by the replay.
        expect(replayed?.equals(reference ?? Buffer.alloc(0))).toBe(false);
      }),
      { numRuns: 500 },
    );
  });
});
