/**
 * TPM2_MakeCredential computed in TypeScript, activated by a real TPM through tpm2-tools: for
 * an RSA 2048 and an ECC P-256 EK (the TCG default templates, made by tpm2_createek), our
 * credential for an AK made by tpm2_createak comes back out of tpm2_activatecredential; one
 * made for another AK's name, or altered anywhere, does not. And the other way: the daemon's
 * own TPM2_ActivateCredential (EK from the standard template, under its policy) recovers what
 * tpm2_makecredential made for its AK, and what we made, and refuses the rest.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCredential, type MadeCredential } from '../../daemon/verify/credential/make-credential.js';
import { Tpm } from '../../daemon/evidence/tpm/tpm.js';
import { TpmReader, TpmWriter } from '../../daemon/verify/tpm-reader.js';
import { parseTpm2bPublic, parseTpmtPublic } from '../../daemon/verify/tpm-public.js';
import { startSwtpm, tpm2, type Swtpm } from '../helpers/swtpm.js';

/** tpm2-tools' credential file: magic, version, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET. */
function toolsFile(c: MadeCredential): Buffer {
  return new TpmWriter().u32(0xbadcc0de).u32(1).tpm2b(c.credentialBlob).tpm2b(c.secret).finish();
}

describe.each(['rsa', 'ecc'] as const)('MakeCredential for a %s EK, activated by tpm2-tools', (alg) => {
  let sw: Swtpm;
  const f = (n: string) => join(sw.dir, n);
  // No resource manager in front of swtpm: what each tool leaves loaded is flushed before the next.
  const ok = async (args: string[]) => {
    await tpm2(['flushcontext', '-t'], sw.tcti);
    const r = await tpm2(args, sw.tcti);
    if (r.code !== 0) throw new Error(`${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r;
  };
  const activate = async (cred: Buffer) => {
    await writeFile(f('cred.bin'), cred);
    await tpm2(['flushcontext', '-t'], sw.tcti);
    // The EK's policy: PolicySecret of the endorsement hierarchy, in a policy session.
    await ok(['startauthsession', '--policy-session', '-S', f('session.ctx')]);
    try {
      await tpm2(['policysecret', '-S', f('session.ctx'), '-c', 'e'], sw.tcti);
      await rm(f('out.bin'), { force: true });
      const r = await tpm2(['activatecredential', '-c', f('ak.ctx'), '-C', f('ek.ctx'), '-i', f('cred.bin'), '-o', f('out.bin'),
        '-P', `session:${f('session.ctx')}`], sw.tcti);
      return r.code === 0 ? await readFile(f('out.bin')) : undefined;
    } finally {
      await tpm2(['flushcontext', f('session.ctx')], sw.tcti);
    }
  };

  beforeAll(async () => {
    sw = await startSwtpm();
    await ok(['createek', '-c', f('ek.ctx'), '-G', alg, '-u', f('ek.pub')]);
    await ok(['createak', '-C', f('ek.ctx'), '-c', f('ak.ctx'), '-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa', '-u', f('ak.pub'), '-n', f('ak.name')]);
    await ok(['createak', '-C', f('ek.ctx'), '-c', f('ak2.ctx'), '-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa', '-u', f('ak2.pub'), '-n', f('ak2.name')]);
  });
  afterAll(async () => {
    await sw?.dispose();
  });

  it('is activated to the same secret, and the tools make the same file layout', async () => {
    const ek = parseTpm2bPublic(await readFile(f('ek.pub')));
    const name = await readFile(f('ak.name'));
    const secret = randomBytes(32);
    const made = makeCredential(ek, name, secret);
    expect(await activate(toolsFile(made))).toEqual(secret);

    await writeFile(f('secret.bin'), secret);
    await ok(['makecredential', '-T', 'none', '-u', f('ek.pub'), '-s', f('secret.bin'), '-n', name.toString('hex'), '-o', f('tools.cred')]);
    const theirs = await readFile(f('tools.cred'));
    expect(theirs.length).toBe(toolsFile(made).length);
    expect(theirs.subarray(0, 10)).toEqual(toolsFile(made).subarray(0, 10));
  });

  it('is not activated for another AK than the one it names', async () => {
    const ek = parseTpm2bPublic(await readFile(f('ek.pub')));
    const made = makeCredential(ek, await readFile(f('ak2.name')), randomBytes(32));
    expect(await activate(toolsFile(made))).toBeUndefined();
  });

  it('is not activated when altered in the blob or the secret', async () => {
    const ek = parseTpm2bPublic(await readFile(f('ek.pub')));
    const made = makeCredential(ek, await readFile(f('ak.name')), randomBytes(32));
    for (const at of [1, made.credentialBlob.length - 1]) {
      const blob = Buffer.from(made.credentialBlob);
      blob[at] = (blob[at] ?? 0) ^ 0x01;
      expect(await activate(toolsFile({ ...made, credentialBlob: blob }))).toBeUndefined();
    }
    const secret = Buffer.from(made.secret);
    secret[10] = (secret[10] ?? 0) ^ 0x01;
    expect(await activate(toolsFile({ ...made, secret }))).toBeUndefined();
  });
  it('refuses a key that is no EK, and a credential longer than the EK name digest', async () => {
    const ek = parseTpm2bPublic(await readFile(f('ek.pub')));
    const ak = parseTpm2bPublic(await readFile(f('ak.pub')));
    const name = await readFile(f('ak.name'));
    expect(() => makeCredential(ak, name, randomBytes(32))).toThrow(/not a restricted decryption key/);
    expect(() => makeCredential(ek, name, randomBytes(33))).toThrow(/1 to 32 fit/);
    expect(() => makeCredential(ek, name, Buffer.alloc(0))).toThrow(/1 to 32 fit/);
  });
});

describe.each(['rsa', 'ecc'] as const)('ActivateCredential by attestd with a %s EK', (alg) => {
  let sw: Swtpm;
  let tpm: Tpm;
  let akName: Buffer;
  let ekPub: Buffer;
  const f = (n: string) => join(sw.dir, n);

  beforeAll(async () => {
    sw = await startSwtpm();
    // The tools' EK, from the same standard template the daemon uses; nothing of theirs stays loaded.
    const r = await tpm2(['createek', '-c', f('ek.ctx'), '-G', alg, '-u', f('ek.pub')], sw.tcti);
    expect(r.code, r.stderr).toBe(0);
    await tpm2(['flushcontext', '-t'], sw.tcti);
    ekPub = await readFile(f('ek.pub'));
    tpm = await Tpm.open(sw.tcti);
    akName = parseTpmtPublic(await tpm.attestationKeyPublic()).name;
  });
  afterAll(async () => {
    await tpm?.close();
    await sw?.dispose();
  });

  it("recovers tpm2_makecredential's secret", async () => {
    const secret = randomBytes(32);
    await writeFile(f('secret.bin'), secret);
    const r = await tpm2(['makecredential', '-T', 'none', '-u', f('ek.pub'), '-s', f('secret.bin'), '-n', akName.toString('hex'), '-o', f('tools.cred')], sw.tcti);
    expect(r.code, r.stderr).toBe(0);
    const file = new TpmReader(await readFile(f('tools.cred')));
    expect(file.u32()).toBe(0xbadcc0de);
    expect(file.u32()).toBe(1);
    const blob = file.tpm2b(1024);
    const enc = file.tpm2b(1024);
    expect(await tpm.activateCredential(alg, blob, enc)).toEqual(secret);
  });

  it('recovers its own MakeCredential secret, and refuses one for another AK or altered', async () => {
    const ek = parseTpm2bPublic(ekPub);
    const secret = randomBytes(20);
    const made = makeCredential(ek, akName, secret);
    expect(await tpm.activateCredential(alg, made.credentialBlob, made.secret)).toEqual(secret);

    const otherName = Buffer.concat([akName.subarray(0, 2), randomBytes(32)]);
    const other = makeCredential(ek, otherName, secret);
    await expect(tpm.activateCredential(alg, other.credentialBlob, other.secret)).rejects.toMatchObject({ code: 'TPM_COMMAND_FAILED' });
    const altered = Buffer.from(made.credentialBlob);
    altered[5] = (altered[5] ?? 0) ^ 1;
    await expect(tpm.activateCredential(alg, altered, made.secret)).rejects.toMatchObject({ code: 'TPM_COMMAND_FAILED' });
    // The session survives the refusals.
    expect(await tpm.activateCredential(alg, made.credentialBlob, made.secret)).toEqual(secret);
  });
});
