/**
 * The attestation key only attestd can use, on a real software TPM with tpm2-tools as the
 * other process: with full access to the TPM, the tools can neither re-create the AK from any
 * template nor quote with the loaded AK, and their failed tries count nothing towards the
 * dictionary-attack lockout; a TPM in lockout still quotes with the AK (and, as a control, not
 * with a dictionary-protected key); the stored key is private to its owner and checked on read.
 */
import { createHash } from 'node:crypto';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { AK_KEY_FILE, fileAkStore } from '../../daemon/evidence/tpm/ak-store.js';
import { Tpm } from '../../daemon/evidence/tpm/tpm.js';
import { verifyQuote } from '../../daemon/verify/quote.js';
import { parseTpm2bPublic, parseTpmtPublic } from '../../daemon/verify/tpm-public.js';
import { startSwtpm, tpm2, type Swtpm } from '../helpers/swtpm.js';

async function ok(args: string[], tcti: string): Promise<Buffer> {
  const r = await tpm2(args, tcti);
  if (r.code !== 0) throw new Error(`${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function transients(tcti: string): Promise<string[]> {
  return [...(await ok(['getcap', 'handles-transient'], tcti)).toString().matchAll(/0x[0-9a-f]{8}/gi)].map((m) => m[0].toLowerCase());
}

/** The TPM's dictionary-attack state, as tpm2_getcap reports it. */
/** Flushes what the tools left loaded (no resource manager here), keeping `keep`. */
async function flushOthers(tcti: string, keep: string): Promise<void> {
  for (const h of await transients(tcti)) if (h !== keep) await ok(['flushcontext', h], tcti);
}

async function lockout(tcti: string): Promise<{ counter: number; inLockout: boolean }> {
  const out = (await ok(['getcap', 'properties-variable'], tcti)).toString();
  const counter = Number(/TPM2_PT_LOCKOUT_COUNTER:\s*(0x[0-9a-f]+|\d+)/i.exec(out)?.[1]);
  const inLockout = /inLockout:\s*1/.exec(out) !== null;
  return { counter, inLockout };
}

async function quoteWith(tpm: Tpm, nonce: Buffer) {
  const q = await tpm.quote(nonce, [{ alg: 'sha256', pcrs: [0, 16] }]);
  const ak = parseTpmtPublic(await tpm.attestationKeyPublic());
  return verifyQuote({ attest: q.attest, signature: q.signature, pcrs: q.banks, ak, expectedNonce: nonce });
}

describe('an attestation key only attestd can use', () => {
  let sw: Swtpm;
  let tpm: Tpm;
  let akPublic: Buffer;
  let akHandle: string;
  const file = () => join(sw.dir, AK_KEY_FILE);
  const f = (n: string) => join(sw.dir, n);

  beforeAll(async () => {
    sw = await startSwtpm();
    tpm = await Tpm.open(sw.tcti, fileAkStore(file()));
    akPublic = await tpm.attestationKeyPublic();
    akHandle = (await transients(sw.tcti))[0] ?? '';
  });
  afterAll(async () => {
    await tpm?.close();
    await sw?.dispose();
  });

  it('keeps the key in a file only its owner can read, and loads the same key from it again', async () => {
    expect((await stat(file())).mode & 0o777).toBe(0o600);
    const again = await Tpm.open(sw.tcti, fileAkStore(file()));
    try {
      expect(await again.attestationKeyPublic()).toEqual(akPublic);
    } finally {
      await again.close();
    }
  });

  it('cannot be re-created from its template in any hierarchy', async () => {
    const attrs = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|sign';
    for (const hierarchy of ['o', 'e']) {
      for (const a of [attrs, attrs.replace('|noda', '')]) {
        await ok(['createprimary', '-C', hierarchy, '-G', 'ecc256:ecdsa-sha256:null', '-a', a, '-c', f('x.ctx')], sw.tcti);
        await ok(['readpublic', '-c', f('x.ctx'), '-o', f('x.pub')], sw.tcti);
        await flushOthers(sw.tcti, akHandle);
        const theirs = parseTpm2bPublic(await readFile(f('x.pub')));
        expect(theirs.key.equals(parseTpmtPublic(akPublic).key)).toBe(false);
      }
    }
  });

  it('refuses a quote to another process using the loaded AK, and counts nothing towards lockout', async () => {
    expect(akHandle).toMatch(/^0x80/);
    const before = await lockout(sw.tcti);
    for (const auth of [[], ['-p', ''], ['-p', 'hex:' + '00'.repeat(32)]]) {
      const r = await tpm2(['quote', '-c', akHandle, ...auth, '-l', 'sha256:0', '-q', '11', '-m', f('m'), '-s', f('s')], sw.tcti);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/auth/i);
    }
    expect((await lockout(sw.tcti)).counter).toBe(before.counter);
    // The daemon's own session still signs with it.
    expect((await quoteWith(tpm, createHash('sha256').update('after').digest())).banks).toHaveLength(1);
  });

  it('still quotes when the TPM is in dictionary-attack lockout, where a dictionary-protected key cannot', async () => {
    await ok(['dictionarylockout', '-s', '-n', '1', '-t', '1000', '-l', '1000'], sw.tcti);
    await ok(['createprimary', '-C', 'o', '-G', 'ecc256:ecdsa-sha256:null', '-p', 'right', '-c', f('da.ctx'),
      '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign'], sw.tcti);
    await writeFile(f('msg'), 'message');
    const bad = await tpm2(['sign', '-c', f('da.ctx'), '-p', 'wrong', '-g', 'sha256', '-o', f('sig'), f('msg')], sw.tcti);
    expect(bad.code).not.toBe(0);
    await flushOthers(sw.tcti, akHandle);
    expect((await lockout(sw.tcti)).inLockout).toBe(true);

    // Control: an AK as attestd made it before (a primary with an empty authValue, not noDA).
    await ok(['createprimary', '-C', 'e', '-G', 'ecc256:ecdsa-sha256:null', '-c', f('old.ctx'),
      '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign'], sw.tcti);
    const old = await tpm2(['quote', '-c', f('old.ctx'), '-l', 'sha256:0', '-q', '11', '-m', f('m'), '-s', f('s')], sw.tcti);
    expect(old.code).not.toBe(0);
    expect(old.stderr).toMatch(/lockout/i);
    await flushOthers(sw.tcti, akHandle);

    // A fresh session loads the stored AK and quotes, in lockout.
    const fresh = await Tpm.open(sw.tcti, fileAkStore(file()));
    try {
      expect(await fresh.attestationKeyPublic()).toEqual(akPublic);
      const nonce = createHash('sha256').update('in lockout').digest();
      expect((await quoteWith(fresh, nonce)).attest.extraData).toEqual(nonce);
    } finally {
      await fresh.close();
    }
    expect((await lockout(sw.tcti)).inLockout).toBe(true);
  });

  it('refuses a stored key that others can read, or that was altered, with AK_STORE_UNUSABLE', async () => {
    const bytes = await readFile(file());
    const open = async (path: string) => {
      const t = await Tpm.open(sw.tcti, fileAkStore(path));
      try {
        return await t.attestationKeyPublic().then(() => undefined, (e: unknown) => e);
      } finally {
        await t.close();
      }
    };
    await writeFile(f('readable.key'), bytes);
    await chmod(f('readable.key'), 0o644);
    const e1 = await open(f('readable.key'));
    expect(e1).toBeInstanceOf(AttestdError);
    expect((e1 as AttestdError).code).toBe('AK_STORE_UNUSABLE');
    const altered = Buffer.from(bytes);
    altered[altered.length - 1] = (altered[altered.length - 1] ?? 0) ^ 1; // the authValue: the TPM refuses the key's use
    await writeFile(f('altered.key'), altered, { mode: 0o600 });
    const t = await Tpm.open(sw.tcti, fileAkStore(f('altered.key')));
    try {
      const e2 = await t.quote(Buffer.from('n'), [{ alg: 'sha256', pcrs: [0] }]).then(() => undefined, (e: unknown) => e);
      expect((e2 as AttestdError).code).toBe('TPM_COMMAND_FAILED');
    } finally {
      await t.close();
    }
    const truncated = bytes.subarray(0, bytes.length - 3);
    await writeFile(f('short.key'), truncated, { mode: 0o600 });
    expect(((await open(f('short.key'))) as AttestdError).code).toBe('AK_STORE_UNUSABLE');
  });
});
