import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AttestdError } from '../../daemon/base/errors.js';
import { MAX_NOTE_BYTES, MAX_SIGNATURES, noteKeyHash, openNote, parseVerifierKey, signNote, verifierKeyString, type NoteVerifier } from '../../daemon/verify/signed-note.js';
import type { Signer } from '../../daemon/base/signer.js';
import { MERKLE_FIXTURES } from './log-helpers.js';

const NOTES = join(MERKLE_FIXTURES, 'signed-note');
const read = (name: string): string => readFileSync(join(NOTES, name), 'utf8');

function expectCode(fn: () => unknown, code: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(AttestdError);
  expect((thrown as AttestdError).code).toBe(code);
}

interface TestKey extends Signer {
  raw: Buffer;
  key: KeyObject;
}

function newKey(): TestKey {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  return { raw, key: publicKey, sign: (data) => sign(null, data, privateKey), publicKey: () => raw };
}

function verifierFor(name: string, k: TestKey): NoteVerifier {
  return parseVerifierKey(verifierKeyString(name, k.raw));
}

describe('golang.org/x/mod note vectors', () => {
  const peter = parseVerifierKey(read('x_mod_PeterNeumann.vkey').trim());
  const enoch = parseVerifierKey(read('x_mod_EnochRoot.vkey').trim());
  const text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";

  it('parses both verifier keys', () => {
    expect(peter.name).toBe('PeterNeumann');
    expect(peter.keyHash).toBe(0xc74f20a3);
    expect(enoch.name).toBe('EnochRoot');
    expect(enoch.keyHash).toBe(0xaf0cfe78);
    const raw = Buffer.from(peter.key.export({ format: 'jwk' }).x!, 'base64url');
    expect(verifierKeyString('PeterNeumann', raw)).toBe(read('x_mod_PeterNeumann.vkey').trim());
  });

  it('the note verifies with each key alone and with both', () => {
    const note = read('x_mod_note_peter_enoch.note');
    expect(openNote(note, [peter])).toEqual({ body: text, verifiedBy: ['PeterNeumann'] });
    expect(openNote(note, [enoch])).toEqual({ body: text, verifiedBy: ['EnochRoot'] });
    expect(openNote(note, [enoch, peter])).toEqual({ body: text, verifiedBy: ['PeterNeumann', 'EnochRoot'] });
    expect(openNote(Buffer.from(note), [peter]).body).toBe(text);
  });

  it('the tampered note fails with each key and with both', () => {
    const note = read('x_mod_note_TAMPERED_text.note');
    for (const vs of [[peter], [enoch], [peter, enoch]]) expectCode(() => openNote(note, vs), 'NOTE_SIGNATURE_INVALID');
  });

  it('a note signed by no known key is refused', () => {
    const other = verifierFor('PeterNeumann', newKey()); // same name, other key ID
    expectCode(() => openNote(read('x_mod_note_peter_enoch.note'), [other]), 'NOTE_SIGNATURE_INVALID');
    expectCode(() => openNote(read('x_mod_note_peter_enoch.note'), []), 'NOTE_SIGNATURE_INVALID');
  });
});

describe('signNote and openNote', () => {
  const k = newKey();
  const v = verifierFor('attestd.example/node-1', k);
  const body = 'attestd.example/node-1\n42\nq83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=\n';
  const note = signNote(body, 'attestd.example/node-1', k);

  it('round-trips and has the C2SP shape', () => {
    expect(openNote(note, [v])).toEqual({ body, verifiedBy: ['attestd.example/node-1'] });
    const sigLine = note.slice(body.length + 1);
    expect(sigLine.startsWith('\u2014 attestd.example/node-1 ')).toBe(true);
    const blob = Buffer.from(sigLine.trim().split(' ')[2]!, 'base64');
    expect(blob.length).toBe(68);
    expect(blob.readUInt32BE(0)).toBe(noteKeyHash('attestd.example/node-1', k.raw));
  });

  it('keeps blank lines inside the text', () => {
    for (const b of ['a\n\nb\n', 'a\n\n', '\n', 'x\n\n\n']) expect(openNote(signNote(b, 'n', k), [verifierFor('n', k)]).body).toBe(b);
  });

  it('ignores unknown signers but not a failing known one', () => {
    const stranger = newKey();
    const sv = verifierFor('stranger', stranger);
    const strangerLine = (text: string): string => signNote(text, 'stranger', stranger).slice(text.length + 1);
    const cosigned = note + strangerLine(body);
    expect(openNote(cosigned, [v]).verifiedBy).toEqual(['attestd.example/node-1']);
    expect(openNote(cosigned, [v, sv]).verifiedBy).toEqual(['attestd.example/node-1', 'stranger']);
    // Same name and key ID as the signer, but another key: the line must verify and does not.
    const impostor: NoteVerifier = { name: v.name, keyHash: v.keyHash, key: newKey().key };
    expectCode(() => openNote(note, [impostor]), 'NOTE_SIGNATURE_INVALID');
    // A known key's line over other text is an error even though another known key verifies.
    const misplaced = note + strangerLine('other text\n');
    expect(openNote(misplaced, [v]).verifiedBy).toEqual([v.name]);
    expectCode(() => openNote(misplaced, [v, sv]), 'NOTE_SIGNATURE_INVALID');
  });

  const negatives: [string, () => string, string][] = [
    ['changed body byte', () => note.replace('42', '43'), 'NOTE_SIGNATURE_INVALID'],
    ['truncated signature (63 bytes)', () => truncateSig(note, 63), 'NOTE_SIGNATURE_INVALID'],
    ['signature of key ID only', () => truncateSig(note, 0), 'NOTE_MALFORMED'],
    ['bad base64', () => note.replace(/ (\S+)\n$/, ' $1!\n'), 'NOTE_MALFORMED'],
    ['base64url signature', () => note.replace(/ (\S+)\n$/, (_m, s: string) => ` ${Buffer.from(s, 'base64').toString('base64url')}\n`), 'NOTE_MALFORMED'],
    ['missing blank line', () => note.replace('\n\n', '\n'), 'NOTE_MALFORMED'],
    ['CRLF line endings', () => note.replace(/\n/g, '\r\n'), 'NOTE_MALFORMED'],
    ['no final newline', () => note.slice(0, -1), 'NOTE_MALFORMED'],
    ['hyphen instead of em dash', () => note.replace('\u2014', '-'), 'NOTE_MALFORMED'],
    ['no signature lines', () => body + '\n', 'NOTE_MALFORMED'],
    ['two spaces after the name', () => note.replace('node-1 ', 'node-1  '), 'NOTE_MALFORMED'],
    ['key name with a plus', () => note.replace('\u2014 attestd', '\u2014 a+ttestd'), 'NOTE_MALFORMED'],
    ['tab in the text', () => note.replace('42', '4\t2'), 'NOTE_MALFORMED'],
    ['lone surrogate', () => note.replace('42', '4\ud800'), 'NOTE_MALFORMED'],
    ['too many signatures', () => note + note.slice(body.length + 1).repeat(MAX_SIGNATURES), 'NOTE_MALFORMED'],
    ['too large', () => 'a'.repeat(MAX_NOTE_BYTES) + note, 'NOTE_MALFORMED'],
  ];
  it.each(negatives)('refuses a note with %s', (_name, make, code) => {
    expectCode(() => openNote(make(), [v]), code);
  });

  it('accepts up to MAX_SIGNATURES lines', () => {
    const line = note.slice(body.length + 1);
    expect(openNote(note + line.repeat(MAX_SIGNATURES - 1), [v]).verifiedBy).toEqual([v.name]);
  });

  it('refuses invalid UTF-8 bytes', () => {
    const bytes = Buffer.from(note);
    bytes[0] = 0xff;
    expectCode(() => openNote(bytes, [v]), 'NOTE_MALFORMED');
  });

  it('refuses bad sign arguments with INVALID_ARGUMENT', () => {
    const cases: (() => unknown)[] = [
      () => signNote('', 'n', k),
      () => signNote('no newline', 'n', k),
      () => signNote('cr\r\n', 'n', k),
      () => signNote('ok\n', '', k),
      () => signNote('ok\n', 'has space', k),
      () => signNote('ok\n', 'has+plus', k),
      () => signNote('ok\n', 'n', { ...k, sign: () => Buffer.alloc(63) }),
      () => signNote('ok\n', 'n', { ...k, publicKey: () => Buffer.alloc(31) }),
      () => openNote(note, [{ name: 'n', keyHash: 2 ** 32, key: k.key }]),
    ];
    for (const c of cases) expectCode(c, 'INVALID_ARGUMENT');
  });

  it('round-trips arbitrary note text', () => {
    const text = fc.string({ unit: 'grapheme', minLength: 0, maxLength: 60 }).map((s) => [...s].map((ch) => (ch.charCodeAt(0) < 0x20 ? '\n' : ch)).join('') + '\n');
    fc.assert(
      fc.property(text, (t) => {
        expect(openNote(signNote(t, 'n', k), [verifierFor('n', k)]).body).toBe(t);
      }),
      { numRuns: 100 },
    );
  });

  it('throws only note errors on arbitrary and mutated notes', () => {
    const arbitrary = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.tuple(fc.nat(note.length), fc.string({ unit: 'binary', maxLength: 3 }), fc.nat(3)).map(([at, ins, del]) => note.slice(0, at) + ins + note.slice(at + del)),
      fc.uint8Array({ maxLength: 200 }),
    );
    fc.assert(
      fc.property(arbitrary, (input) => {
        try {
          const opened = openNote(input, [v]);
          // Only the original text can carry a signature that verifies.
          expect(opened.body).toBe(body);
        } catch (err) {
          expect(err).toBeInstanceOf(AttestdError);
          expect(['NOTE_MALFORMED', 'NOTE_SIGNATURE_INVALID']).toContain((err as AttestdError).code);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

function truncateSig(note: string, sigBytes: number): string {
  return note.replace(/ (\S+)\n$/, (_m, s: string) => ` ${Buffer.from(s, 'base64').subarray(0, 4 + sigBytes).toString('base64')}\n`);
}

describe('parseVerifierKey', () => {
  const k = newKey();
  const vkey = verifierKeyString('example.com/log', k.raw);

  it('round-trips verifierKeyString', () => {
    const v = parseVerifierKey(vkey);
    expect(v.name).toBe('example.com/log');
    expect(v.keyHash).toBe(noteKeyHash('example.com/log', k.raw));
    expect(Buffer.from(v.key.export({ format: 'jwk' }).x!, 'base64url').equals(k.raw)).toBe(true);
  });

  const [name, hash, data] = vkey.split('+') as [string, string, string];
  const keyBytes = Buffer.from(data, 'base64');
  const other = (h: string): string => (h === '00000000' ? '00000001' : '00000000');
  const bad: [string, string][] = [
    ['wrong key hash', `${name}+${other(hash)}+${data}`],
    ['short key hash', `${name}+${hash.slice(1)}+${data}`],
    ['non-hex key hash', `${name}+${hash.slice(1)}g+${data}`],
    ['algorithm 0x02', `${name}+${hash}+${Buffer.concat([Buffer.from([2]), keyBytes.subarray(1)]).toString('base64')}`],
    ['31-byte key', `${name}+${hash}+${keyBytes.subarray(0, 32).toString('base64')}`],
    ['bad base64', `${name}+${hash}+${data.slice(1)}`],
    ['empty name', `+${hash}+${data}`],
    ['name with a space', `a b+${hash}+${data}`],
    ['missing parts', `${name}+${hash}`],
    ['extra plus', `${name}+${hash}+${data}+`],
  ];
  it.each(bad)('refuses a vkey with %s', (_name, s) => {
    expectCode(() => parseVerifierKey(s), 'INVALID_ARGUMENT');
  });

  it('throws only INVALID_ARGUMENT on arbitrary input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 120 }), fc.tuple(fc.nat(vkey.length), fc.string({ maxLength: 2 })).map(([at, s]) => vkey.slice(0, at) + s + vkey.slice(at + 1))), (s) => {
        try {
          parseVerifierKey(s);
        } catch (err) {
          expect(err).toBeInstanceOf(AttestdError);
          expect((err as AttestdError).code).toBe('INVALID_ARGUMENT');
        }
      }),
      { numRuns: 500 },
    );
  });
});
