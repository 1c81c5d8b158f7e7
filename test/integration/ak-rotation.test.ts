/**
 * AK rotation on swtpm: `attestd --rotate-ak` has the stored AK certify a new one, records the
 * rotation, stores the new key and moves the pin; the offline verifier follows the rotation
 * from the old AK, refuses the log with only the new AK, and refuses a tampered rotation.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSwtpm, tpm2, type Swtpm } from '../helpers/swtpm.js';
import { attestctl, startDaemon } from '../helpers/daemon.js';
import { akKey, decode, encode, payloads, verifyDir, writeLog } from '../helpers/audit-log.js';
import { parseTpmtPublic } from '../../daemon/verify/tpm-public.js';
import { eccTpmtPublic, p256 } from '../unit/verify-helpers.js';
import { parseCertifyAttest } from '../../daemon/verify/tpm-attest.js';
import { parseTpmtSignature, verifyTpmSignature } from '../../daemon/verify/tpm-signature.js';

let tpm: Swtpm;
let state: string;
let oldPem: string;
let newPem: string;
let oldPin: Buffer;
let oldKey: Buffer;
let rotatedOutput: string;
let firstOutput: string;
const keep: string[] = [];

beforeAll(async () => {
  tpm = await startSwtpm();
  state = mkdtempSync(join(tmpdir(), 'attestd-rotate-'));
  keep.push(state);
  // First start, with the flag: no stored key yet, so nothing to rotate.
  const a = await startDaemon({ tcti: tpm.tcti, stateDir: state, args: ['--rotate-ak'] });
  oldPem = (await a.status()).akPublicPem;
  firstOutput = a.output();
  await a.stop();
  oldPin = readFileSync(join(state, 'ak.pub'));
  oldKey = readFileSync(join(state, 'ak.key'));
  const b = await startDaemon({ tcti: tpm.tcti, stateDir: state, args: ['--rotate-ak'] });
  newPem = (await b.status()).akPublicPem;
  rotatedOutput = b.output();
  await b.stop();
}, 60_000);

afterAll(async () => {
  for (const d of keep) rmSync(d, { recursive: true, force: true });
  await tpm?.dispose();
});

/** The audit folder's payloads with the AkRotation record changed by `edit`, as a new folder. */
async function tampered(edit: (r: NonNullable<ReturnType<typeof decode>['akRotation']>) => void): Promise<string> {
  const list = await payloads(join(state, 'audit'));
  const i = list.findIndex((p) => decode(p).akRotation);
  const rec = decode(list[i]!);
  edit(rec.akRotation!);
  list[i] = Buffer.from(encode(rec));
  const dir = await writeLog(list);
  keep.push(dir);
  return dir;
}

describe('attestd --rotate-ak', () => {
  it('does nothing on a first start, then rotates: a new AK in status and in the pin, the rotation in the log', async () => {
    expect(firstOutput).toContain('nothing to rotate');
    expect(newPem).toContain('BEGIN PUBLIC KEY');
    expect(newPem).not.toBe(oldPem);
    expect(rotatedOutput).toContain('attestation key rotated');
    const pin = readFileSync(join(state, 'ak.pub'));
    expect(pin.equals(oldPin)).toBe(false);
    expect(parseTpmtPublic(pin).key.export({ type: 'spki', format: 'pem' })).toBe(newPem);
    expect(existsSync(join(state, 'ak.key.next'))).toBe(false);
    const records = (await payloads(join(state, 'audit'))).map(decode);
    const at = records.findIndex((r) => r.akRotation);
    expect(records.filter((r) => r.akRotation)).toHaveLength(1);
    const rot = records[at]!.akRotation!;
    expect(Buffer.from(rot.oldAkPublic!).equals(oldPin)).toBe(true);
    expect(Buffer.from(rot.newAkPublic!).equals(pin)).toBe(true);
    // The session start that follows names the new AK.
    const next = records.slice(at).find((r) => r.sessionStart)!;
    expect(Buffer.from(next.sessionStart!.akPublic!).equals(pin)).toBe(true);
  });

  it('verifies over both sessions from the old AK, and not with the new AK alone', async () => {
    const oldFile = join(state, 'old.pem');
    const newFile = join(state, 'new.pem');
    writeFileSync(oldFile, oldPem);
    writeFileSync(newFile, newPem);
    const ok = await attestctl(['audit', 'verify', join(state, 'audit'), '--ak', oldFile, '--json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ verified: true, akRotations: 1 });
    const r = await verifyDir(join(state, 'audit'), akKey(oldPem));
    if (!r.ok) throw r.failure;
    expect(r.summary.sessions).toBe(2);
    expect(r.summary.akRotations).toBe(1);
    const bad = await attestctl(['audit', 'verify', join(state, 'audit'), '--ak', newFile, '--json']);
    expect(bad.code).not.toBe(0);
    expect(JSON.parse(bad.stdout)).toMatchObject({ verified: false, check: 'session-chain', seq: 0 });
  });

  it('fails ak-rotation on a flipped byte in the certification or its signature, or another new AK', async () => {
    const flipInfo = await tampered((r) => {
      const b = Buffer.from(r.certifyInfo!);
      b[b.length - 5]! ^= 0x01;
      r.certifyInfo = b;
    });
    const cli = await attestctl(['audit', 'verify', flipInfo, '--ak', join(state, 'old.pem'), '--json']);
    expect(JSON.parse(cli.stdout)).toMatchObject({ verified: false, check: 'ak-rotation' });
    const flipSig = await tampered((r) => {
      const b = Buffer.from(r.signature!);
      b[b.length - 3]! ^= 0x80;
      r.signature = b;
    });
    // Another key in the new AK's place: the first session's AK public area with another point.
    const swapped = await tampered((r) => {
      const other = parseTpmtPublic(Buffer.from(r.oldAkPublic!)).publicArea;
      r.newAkPublic = other;
    });
    for (const dir of [flipInfo, flipSig, swapped]) {
      const v = await verifyDir(dir, akKey(oldPem));
      expect(v.ok).toBe(false);
      if (!v.ok) expect(v.failure.check).toBe('ak-rotation');
    }
  });

  it('removes a leftover new key whose rotation was never recorded, and keeps the rotated AK', async () => {
    const next = join(state, 'ak.key.next');
    copyFileSync(join(state, 'ak.key'), next);
    chmodSync(next, 0o600);
    const c = await startDaemon({ tcti: tpm.tcti, stateDir: state });
    expect((await c.status()).akPublicPem).toBe(newPem);
    expect(c.output()).toContain('leftover new attestation key removed');
    await c.stop();
    expect(existsSync(next)).toBe(false);
  });

  it('completes at start a rotation a crash cut off after its record: the key, then the pin, put in place', async () => {
    const key = join(state, 'ak.key');
    const pin = join(state, 'ak.pub');
    const newKey = readFileSync(key);
    const newPin = readFileSync(pin);
    // A crash after the record, before the rename: the old key and pin, the new key beside them.
    writeFileSync(`${key}.next`, newKey, { mode: 0o600 });
    writeFileSync(key, oldKey, { mode: 0o600 });
    writeFileSync(pin, oldPin);
    const c = await startDaemon({ tcti: tpm.tcti, stateDir: state });
    expect((await c.status()).akPublicPem).toBe(newPem);
    expect(c.output()).toContain('attestation key rotation completed at start');
    expect(c.output()).toContain('attestation key pin moved to the rotated key at start');
    await c.stop();
    expect(readFileSync(key).equals(newKey)).toBe(true);
    expect(readFileSync(pin).equals(newPin)).toBe(true);
    expect(existsSync(`${key}.next`)).toBe(false);
    // A crash after the rename, before the pin was moved.
    writeFileSync(pin, oldPin);
    const d = await startDaemon({ tcti: tpm.tcti, stateDir: state });
    expect((await d.status()).akPublicPem).toBe(newPem);
    expect(d.output()).toContain('attestation key pin moved to the rotated key at start');
    await d.stop();
    const r = await verifyDir(join(state, 'audit'), akKey(oldPem));
    if (!r.ok) throw r.failure;
    expect(r.summary.akRotations).toBe(1);
  });

  it('refuses to rotate a stored key that is not the pinned one, and leaves both as they were', async () => {
    const pin = join(state, 'ak.pub');
    const newPin = readFileSync(pin);
    const key = readFileSync(join(state, 'ak.key'));
    // A pin of a key this TPM never held, and no rotation in the log that leads from it.
    const stranger = eccTpmtPublic(p256().publicKey);
    writeFileSync(pin, stranger);
    await expect(startDaemon({ tcti: tpm.tcti, stateDir: state, args: ['--rotate-ak'] })).rejects.toThrow(/AK_ROTATION_INVALID/);
    expect(readFileSync(pin).equals(stranger)).toBe(true);
    expect(readFileSync(join(state, 'ak.key')).equals(key)).toBe(true);
    writeFileSync(pin, newPin);
  });

  it('reads a certification made by tpm2_certify: the certified name, and the signature by the signing key', async () => {
    const f = (n: string) => join(state, `tools-${n}`);
    // Without a resource manager each tool leaves its objects loaded: flushed after every one.
    const run = async (args: string[]) => {
      const r = await tpm2(args, tpm.tcti);
      if (r.code !== 0) throw new Error(`${args[0]}: ${r.stderr}`);
      await tpm2(['flushcontext', '-t'], tpm.tcti);
    };
    await run(['createprimary', '-C', 'o', '-G', 'ecc256', '-c', f('srk.ctx')]);
    const attrs = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign';
    for (const k of ['signer', 'object']) {
      await run(['create', '-C', f('srk.ctx'), '-G', 'ecc256:ecdsa-sha256:null', '-a', attrs, '-u', f(`${k}.pub`), '-r', f(`${k}.priv`)]);
    }
    await run(['load', '-C', f('srk.ctx'), '-u', f('signer.pub'), '-r', f('signer.priv'), '-c', f('signer.ctx')]);
    await run(['load', '-C', f('srk.ctx'), '-u', f('object.pub'), '-r', f('object.priv'), '-c', f('object.ctx')]);
    await run(['certify', '-c', f('object.ctx'), '-C', f('signer.ctx'), '-g', 'sha256', '-o', f('attest'), '-s', f('sig')]);
    const unwrap = (b: Buffer) => b.subarray(2, 2 + b.readUInt16BE(0));
    const signer = parseTpmtPublic(unwrap(readFileSync(f('signer.pub'))));
    const object = parseTpmtPublic(unwrap(readFileSync(f('object.pub'))));
    const attest = readFileSync(f('attest'));
    const info = parseCertifyAttest(attest);
    expect(info.name.equals(object.name)).toBe(true);
    // tpm2_certify has no option for qualifying data, so a rotation's own cannot be made here.
    expect(info.clockInfo.clock).toBeGreaterThan(0n);
    expect(verifyTpmSignature(signer, attest, parseTpmtSignature(readFileSync(f('sig'))))).toBe(true);
    expect(verifyTpmSignature(object, attest, parseTpmtSignature(readFileSync(f('sig'))))).toBe(false);
  });
});
