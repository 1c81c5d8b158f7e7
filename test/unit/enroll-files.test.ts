// Enrollment files read back from disk or from the other party: hostile input. Each round-trips,
// every decoder refuses anything malformed with ENROLL_INVALID (never another error), and the
// proof binds the secret, the challenge id and the AK name.
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import {
  decodeChallenge, decodeResponse, decodeState, encodeChallenge, encodeResponse, encodeState, enrollProof, proofMatches,
  type Challenge, type EnrollResponse, type EnrollState,
} from '../../daemon/enroll/files.js';
import { codeOf } from './verify-helpers.js';

const challenge: Challenge = {
  id: randomBytes(16), ekKind: 'rsa', ekCertificateSha256: randomBytes(32), akName: Buffer.concat([Buffer.from([0, 11]), randomBytes(32)]),
  credentialBlob: randomBytes(70), secret: randomBytes(256),
};
const state: EnrollState = {
  id: challenge.id, ekKind: 'ecc', ekCertificate: randomBytes(900), akPublic: randomBytes(88), credential: randomBytes(32), createdMs: 1_800_000_000_000,
};
const response: EnrollResponse = { id: challenge.id, akName: challenge.akName, proof: randomBytes(32) };

const codecs = [
  ['challenge', () => encodeChallenge(challenge), decodeChallenge, challenge],
  ['state', () => encodeState(state), decodeState, state],
  ['response', () => encodeResponse(response), decodeResponse, response],
] as const;

describe.each(codecs)('the %s file', (_name, encode, decode, value) => {
  it('round-trips', () => {
    expect(decode(encode())).toEqual(value);
  });

  it('refuses unknown fields, missing fields, wrong lengths and another kind of file', () => {
    const o = JSON.parse(encode().toString()) as Record<string, unknown>;
    expect(codeOf(() => decode(Buffer.from(JSON.stringify({ ...o, extra: 1 }))))).toBe('ENROLL_INVALID');
    expect(codeOf(() => decode(Buffer.from(JSON.stringify({ ...o, id: undefined }))))).toBe('ENROLL_INVALID');
    expect(codeOf(() => decode(Buffer.from(JSON.stringify({ ...o, id: 'abcd' }))))).toBe('ENROLL_INVALID');
    expect(codeOf(() => decode(Buffer.from(JSON.stringify({ ...o, id: (o.id as string).toUpperCase() }))))).toBe('ENROLL_INVALID');
    expect(codeOf(() => decode(Buffer.from(JSON.stringify({ ...o, attestd_enroll: 'other/v1' }))))).toBe('ENROLL_INVALID');
    expect(codeOf(() => decode(Buffer.from('[1]')))).toBe('ENROLL_INVALID');
    expect(codeOf(() => decode(Buffer.alloc(70 * 1024, 0x20)))).toBe('ENROLL_INVALID');
  });

  it('decodes or throws ENROLL_INVALID on arbitrary bytes and mutated files', () => {
    const valid = encode();
    const inputs = fc.oneof(
      fc.uint8Array({ maxLength: 400 }),
      fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
        const b = Buffer.from(valid);
        b[i] = (b[i] ?? 0) ^ x;
        return b;
      }),
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
    );
    fc.assert(fc.property(inputs, (bytes) => {
      try {
        decode(bytes);
      } catch (err) {
        expect(err).toBeInstanceOf(AttestdError);
        expect((err as AttestdError).code).toBe('ENROLL_INVALID');
      }
    }), { numRuns: 1500 });
  });
});

describe('the enrollment proof', () => {
  it('changes with the secret, the challenge id and the AK name', () => {
    const p = enrollProof(state.credential, state.id, challenge.akName);
    expect(proofMatches(p, enrollProof(state.credential, state.id, challenge.akName))).toBe(true);
    expect(proofMatches(p, enrollProof(randomBytes(32), state.id, challenge.akName))).toBe(false);
    expect(proofMatches(p, enrollProof(state.credential, randomBytes(16), challenge.akName))).toBe(false);
    expect(proofMatches(p, enrollProof(state.credential, state.id, randomBytes(34)))).toBe(false);
    expect(proofMatches(p, p.subarray(0, 31))).toBe(false);
  });
});
