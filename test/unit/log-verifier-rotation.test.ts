/**
 * The offline verifier across AK rotations, on synthetic logs: from a given AK it follows each
 * rotation that AK certified, and the new AK is then the one trusted; with enrolling CAs, a
 * rotation counts only from an AK a certificate vouched for. A rotation from another key, one
 * that does not verify, or a later session that goes back to the old AK fails.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogVerifier } from '../../daemon/auditor/log-verifier.js';
import { AuditFailure } from '../../daemon/auditor/report.js';
import { issueAkCertificate } from '../../daemon/enroll/ak-certificate.js';
import { attestd } from '../../daemon/gen/proto.js';
import { parseCertificate, type Certificate } from '../../daemon/verify/x509/certificate.js';
import { parseTpmtPublic } from '../../daemon/verify/tpm-public.js';
import { eccTpmtPublic, flipBit, p256 } from './verify-helpers.js';
import { rotation, type KeyPair, type Rotation } from './ak-rotation-helpers.js';

type Body = attestd.audit.v1.AuditRecord.$Properties;
const T = 1_800_000_000_000;
const sessionKey = () => Buffer.from(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!, 'base64url');

const start = (akPublic: Buffer, akCertificate?: Buffer): Body => ({ sessionStart: { sessionPublicKey: sessionKey(), akPublic, akCertificate } });
const rotated = (r: Rotation): Body => ({ akRotation: { oldAkPublic: r.oldAk.publicArea, newAkPublic: r.newAkPublic, certifyInfo: r.certifyInfo, signature: r.signature } });

function run(v: LogVerifier, bodies: Body[]) {
  bodies.forEach((b, seq) => v.record(attestd.audit.v1.AuditRecord.encode({ seq, timeMs: T + seq, ...b }).finish()));
  return v.finish();
}

function failure(v: LogVerifier, bodies: Body[]): AuditFailure {
  try {
    run(v, bodies);
  } catch (err) {
    if (err instanceof AuditFailure) return err;
    throw err;
  }
  throw new Error('verified');
}

let first: KeyPair;
let firstPublic: Buffer;
let r1: Rotation;
let r2: Rotation;

beforeAll(() => {
  first = p256();
  firstPublic = eccTpmtPublic(first.publicKey);
  r1 = rotation({ from: first });
  r2 = rotation({ from: r1.newKeys });
});

describe('offline verifier: AK rotations with a given AK', () => {
  it('follows two rotations from the first AK', () => {
    const log = [start(firstPublic), rotated(r1), start(r1.newAkPublic), rotated(r2), start(r2.newAkPublic)];
    expect(run(new LogVerifier(first.publicKey), log)).toMatchObject({ sessions: 3, akRotations: 2 });
    // The last AK alone does not vouch for the sessions before it.
    expect(failure(new LogVerifier(r2.newKeys.publicKey), log)).toMatchObject({ check: 'session-chain', where: { seq: 0 } });
  });

  it('fails ak-rotation on a tampered certification or signature, another new AK, or a rotation from another key', () => {
    const bad = (r: Rotation) => failure(new LogVerifier(first.publicKey), [start(firstPublic), rotated(r), start(r.newAkPublic)]);
    expect(bad({ ...r1, certifyInfo: flipBit(r1.certifyInfo, 40) })).toMatchObject({ check: 'ak-rotation', where: { seq: 1 } });
    expect(bad({ ...r1, signature: flipBit(r1.signature, 10) })).toMatchObject({ check: 'ak-rotation', where: { seq: 1 } });
    expect(bad({ ...r1, newAkPublic: eccTpmtPublic(p256().publicKey) }).check).toBe('ak-rotation');
    // A stranger's key certifying its own successor: correct in itself, but not from the trusted AK.
    expect(bad(rotation()).check).toBe('ak-rotation');
    // A rotation first in the log, from a key other than the given one.
    expect(failure(new LogVerifier(first.publicKey), [rotated(rotation())])).toMatchObject({ check: 'ak-rotation', where: { seq: 0 } });
  });

  it('accepts a rotation before any session start, and refuses a later session going back to the old AK', () => {
    expect(run(new LogVerifier(first.publicKey), [rotated(r1), start(r1.newAkPublic)])).toMatchObject({ akRotations: 1 });
    expect(failure(new LogVerifier(first.publicKey), [start(firstPublic), rotated(r1), start(firstPublic)]))
      .toMatchObject({ check: 'session-chain', where: { seq: 2 } });
  });
});

describe('offline verifier: AK rotations with enrolling CAs', () => {
  let dir: string;
  let ca: { der: Buffer; key: KeyObject; cert: Certificate };
  let other: { der: Buffer; key: KeyObject; cert: Certificate };

  const makeCa = (name: string) => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`,
      '-out', `${name}.der`, '-outform', 'DER', '-days', '3650', '-subj', `/CN=attestd test enrolling CA ${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { cwd: dir, stdio: 'pipe' });
    const der = readFileSync(join(dir, `${name}.der`));
    return { der, key: createPrivateKey(readFileSync(join(dir, `${name}.key`))), cert: parseCertificate(der, 'AK_CERT_INVALID') };
  };
  const certFor = (publicArea: Buffer, by = ca) => {
    const ak = parseTpmtPublic(publicArea);
    return issueAkCertificate({ akKey: ak.key, akName: ak.name, ekCertificateSha256: Buffer.alloc(32, 1), caCertificate: by.der, caKey: by.key,
      notBefore: new Date(T - 86_400_000), notAfter: new Date(T + 86_400_000) });
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'attestd-rotation-ca-'));
    ca = makeCa('ca');
    other = makeCa('other');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('counts the new AK as certified through the old AK\'s certificate', () => {
    const log = [start(firstPublic, certFor(firstPublic)), rotated(r1), start(r1.newAkPublic)];
    expect(run(new LogVerifier(undefined, [], { akCas: [ca.cert] }), log)).toMatchObject({ sessions: 2, akRotations: 1 });
    expect(failure(new LogVerifier(undefined, [], { akCas: [other.cert] }), log).check).toBe('ak-certificate');
  });

  it('refuses a rotation from an AK no certificate vouched for, and a rotation that does not verify', () => {
    expect(failure(new LogVerifier(undefined, [], { akCas: [ca.cert] }), [start(firstPublic), rotated(r1), start(r1.newAkPublic)]))
      .toMatchObject({ check: 'ak-rotation', where: { seq: 1 } });
    expect(failure(new LogVerifier(undefined, [], { akCas: [ca.cert] }), [rotated(r1)])).toMatchObject({ check: 'ak-rotation', where: { seq: 0 } });
    const tampered = { ...r1, certifyInfo: flipBit(r1.certifyInfo, 50) };
    expect(failure(new LogVerifier(undefined, [], { akCas: [ca.cert] }), [start(firstPublic, certFor(firstPublic)), rotated(tampered)]))
      .toMatchObject({ check: 'ak-rotation', where: { seq: 1 } });
  });
});
