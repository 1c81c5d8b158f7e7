/**
 * The ESYS binding against a real software TPM, cross-checked with tpm2-tools, an
 * independent TPM client: PCR values both ways, the loaded AK as tpm2_readpublic reads it,
 * our quotes through tpm2_checkquote and the verifier, tpm2_quote's quotes through the
 * verifier, and a TPM that dies mid-session (the stored AK comes back after it).
 */
import { createHash, createPublicKey } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { fileAkStore } from '../../daemon/evidence/tpm/ak-store.js';
import { matchesAkTemplate } from '../../daemon/evidence/tpm/ak-template.js';
import { Tpm } from '../../daemon/evidence/tpm/tpm.js';
import type { PcrBank } from '../../daemon/verify/pcr.js';
import { verifyQuote } from '../../daemon/verify/quote.js';
import { parseTpm2bPublic, parseTpmtPublic } from '../../daemon/verify/tpm-public.js';
import { startSwtpm, tpm2, type Swtpm } from '../helpers/swtpm.js';

const ALL_PCRS = Array.from({ length: 24 }, (_, i) => i);

async function ok(args: string[], tcti: string): Promise<Buffer> {
  const r = await tpm2(args, tcti);
  if (r.code !== 0) throw new Error(`${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function transients(tcti: string): Promise<string[]> {
  const out = (await ok(['getcap', 'handles-transient'], tcti)).toString();
  return [...out.matchAll(/0x[0-9a-f]{8}/gi)].map((m) => m[0].toLowerCase());
}

/**
 * Without a resource manager, objects the tools load stay in the TPM's three transient
 * slots; flush them, and only them, so the Tpm under test keeps its AK.
 */
async function flushToolObjects(tcti: string, keep: string[]): Promise<void> {
  for (const h of await transients(tcti)) {
    if (!keep.includes(h)) await ok(['flushcontext', h], tcti);
  }
}

async function expectCode(p: Promise<unknown>, code: string): Promise<AttestdError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AttestdError);
  expect((err as AttestdError).code).toBe(code);
  return err as AttestdError;
}

function bank(values: [number, Buffer][]): PcrBank {
  return { alg: 'sha256', values: new Map(values) };
}

describe('Tpm on swtpm', () => {
  let sw: Swtpm;
  let tpm: Tpm;
  let ours: string[] = [];
  /** A tool command, then its leftover objects flushed (swtpm has three transient slots). */
  const tool = async (args: string[]) => {
    const out = await ok(args, sw.tcti);
    await flushToolObjects(sw.tcti, ours);
    return out;
  };

  beforeAll(async () => {
    sw = await startSwtpm();
    tpm = await Tpm.open(sw.tcti);
    await tpm.attestationKeyPublic();
    ours = await transients(sw.tcti);
  });

  afterAll(async () => {
    await tpm?.close();
    await sw?.dispose();
  });

  it('keeps exactly one transient object, the AK', () => {
    expect(ours).toHaveLength(1);
  });

  it('reads all 24 sha256 PCRs as tpm2_pcrread does, across the 8-per-response limit', async () => {
    await ok(['pcrextend', `3:sha256=${'ab'.repeat(32)}`], sw.tcti);
    const file = join(sw.dir, 'pcrs.bin');
    await ok(['pcrread', `sha256:${ALL_PCRS.join(',')}`, '-o', file], sw.tcti);
    const theirs = await readFile(file);
    const read = await tpm.readPcrs('sha256', ALL_PCRS);
    expect(read.alg).toBe('sha256');
    expect([...read.values.keys()]).toEqual(ALL_PCRS);
    expect(Buffer.concat(ALL_PCRS.map((i) => read.values.get(i) as Buffer))).toEqual(theirs);
    expect(read.values.get(3)?.equals(Buffer.alloc(32))).toBe(false);
  });

  it('sees a tpm2_pcrextend as SHA-256(old || data)', async () => {
    const old = (await tpm.readPcrs('sha256', [16])).values.get(16) as Buffer;
    const data = createHash('sha256').update('attestd test event').digest();
    await ok(['pcrextend', `16:sha256=${data.toString('hex')}`], sw.tcti);
    const now = (await tpm.readPcrs('sha256', [16, 16])).values;
    expect([...now.keys()]).toEqual([16]);
    expect(now.get(16)).toEqual(createHash('sha256').update(old).update(data).digest());
  });

  it('reads another bank with its own digest size', async () => {
    const sha1 = await tpm.readPcrs('sha1', [0, 1, 2]);
    expect([...sha1.values.values()].map((v) => v.length)).toEqual([20, 20, 20]);
  });

  it('loads an AK that tpm2_readpublic reads as ours: restricted, noDA, used with a secret', async () => {
    const mine = await tpm.attestationKeyPublic();
    const [handle] = (await transients(sw.tcti)).filter((h) => !h.endsWith('ffffff'));
    await tool(['readpublic', '-c', handle!, '-o', join(sw.dir, 'tool-ak.pub'), '-f', 'pem']);
    const pem = (await readFile(join(sw.dir, 'tool-ak.pub'))).toString();
    expect(parseTpmtPublic(mine).key.equals(createPublicKey(pem))).toBe(true);
    const attrs = (await tool(['readpublic', '-c', handle!])).toString();
    expect(attrs).toMatch(/noda/);
    expect(attrs).toMatch(/restricted/);
    expect(attrs).toMatch(/userwithauth/);
    expect(await tpm.attestationKeyPublic()).toEqual(mine);
  });

  it('makes quotes that tpm2_checkquote accepts, and only with the right nonce', async () => {
    const nonce = createHash('sha256').update('nonce 1').digest();
    const q = await tpm.quote(nonce, [{ alg: 'sha256', pcrs: [16, 0, 1] }]);
    const values = q.banks[0]?.values as Map<number, Buffer>;
    expect([...values.keys()]).toEqual([0, 1, 16]);
    const ak = parseTpmtPublic(await tpm.attestationKeyPublic());
    const f = (n: string) => join(sw.dir, n);
    await writeFile(f('ak.pem'), ak.key.export({ type: 'spki', format: 'pem' }));
    await writeFile(f('attest.bin'), q.attest);
    await writeFile(f('sig.bin'), q.signature);
    await writeFile(f('pcrs.bin'), Buffer.concat([0, 1, 16].map((i) => values.get(i) as Buffer)));
    const check = (hex: string, pcrFile = f('pcrs.bin')) =>
      tpm2(['checkquote', '-u', f('ak.pem'), '-m', f('attest.bin'), '-s', f('sig.bin'),
        '-f', pcrFile, '-l', 'sha256:0,1,16', '-g', 'sha256', '-q', hex], sw.tcti);

    expect((await check(nonce.toString('hex'))).code).toBe(0);
    const wrongNonce = Buffer.from(nonce);
    wrongNonce[0] = (wrongNonce[0] ?? 0) ^ 1;
    expect((await check(wrongNonce.toString('hex'))).code).not.toBe(0);
    const badPcrs = Buffer.concat([0, 1, 16].map((i) => values.get(i) as Buffer));
    badPcrs[40] = (badPcrs[40] ?? 0) ^ 1;
    await writeFile(f('bad-pcrs.bin'), badPcrs);
    expect((await check(nonce.toString('hex'), f('bad-pcrs.bin'))).code).not.toBe(0);
  });

  it('makes quotes the verifier accepts, and it rejects tampered ones with the right code', async () => {
    const nonce = Buffer.from('attestd binding digest, 32 bytes');
    const q = await tpm.quote(nonce, [
      { alg: 'sha256', pcrs: [0, 1, 16] },
      { alg: 'sha1', pcrs: [0] },
    ]);
    const ak = parseTpmtPublic(await tpm.attestationKeyPublic());
    const v = verifyQuote({ attest: q.attest, signature: q.signature, pcrs: q.banks, ak, expectedNonce: nonce });
    expect(v.banks.map((b) => b.alg)).toEqual(['sha256', 'sha1']);

    const attest = Buffer.from(q.attest);
    attest[attest.length - 1] = (attest[attest.length - 1] ?? 0) ^ 1;
    expect(() => verifyQuote({ attest, signature: q.signature, pcrs: q.banks, ak, expectedNonce: nonce })).toThrow(
      expect.objectContaining({ code: 'QUOTE_BAD_SIGNATURE' }),
    );
    const signature = Buffer.from(q.signature);
    signature[signature.length - 1] = (signature[signature.length - 1] ?? 0) ^ 1;
    expect(() => verifyQuote({ attest: q.attest, signature, pcrs: q.banks, ak, expectedNonce: nonce })).toThrow(
      expect.objectContaining({ code: 'QUOTE_BAD_SIGNATURE' }),
    );
    expect(() => verifyQuote({ attest: q.attest, signature: q.signature, pcrs: q.banks, ak, expectedNonce: Buffer.alloc(32) })).toThrow(
      expect.objectContaining({ code: 'QUOTE_NONCE_MISMATCH' }),
    );
    const sha256 = q.banks[0] as PcrBank;
    const tampered = bank([...sha256.values].map(([i, val]) => [i, i === 16 ? Buffer.alloc(32, 0xee) : val]));
    expect(() =>
      verifyQuote({ attest: q.attest, signature: q.signature, pcrs: [tampered, q.banks[1] as PcrBank], ak, expectedNonce: nonce }),
    ).toThrow(expect.objectContaining({ code: 'QUOTE_PCR_DIGEST_MISMATCH' }));
  });

  it("verifies tpm2_quote's quote with the AK from tpm2_readpublic", async () => {
    const f = (n: string) => join(sw.dir, n);
    const nonce = 'c0ffee' + '00'.repeat(13);
    // The tools build the key as the daemon does (ak-template.ts, srk-template.ts): an AK with
    // a secret authValue under the owner hierarchy's storage root key.
    const auth = 'hex:' + '5a'.repeat(32);
    await tool(['createprimary', '-C', 'o', '-G', 'ecc256:null:aes128cfb', '-c', f('q-srk.ctx'),
      '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt']);
    await tool(['create', '-C', f('q-srk.ctx'), '-G', 'ecc256:ecdsa-sha256:null', '-p', auth, '-u', f('q-ak.pub'), '-r', f('q-ak.priv'),
      '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|sign']);
    await tool(['load', '-C', f('q-srk.ctx'), '-u', f('q-ak.pub'), '-r', f('q-ak.priv'), '-c', f('q-ak.ctx')]);
    await tool(['quote', '-c', f('q-ak.ctx'), '-p', auth, '-l', 'sha256:0,1,16', '-q', nonce,
      '-m', f('q.msg'), '-s', f('q.sig'), '-o', f('q.pcrs')]);

    const ak = parseTpm2bPublic(await readFile(f('q-ak.pub')));
    expect(matchesAkTemplate(ak.publicArea)).toBe(true);
    const pcrs = await tpm.readPcrs('sha256', [0, 1, 16]);
    const attest = await readFile(f('q.msg'));
    const signature = await readFile(f('q.sig'));
    const v = verifyQuote({ attest, signature, pcrs: [pcrs], ak, expectedNonce: Buffer.from(nonce, 'hex') });
    expect(v.attest.extraData.toString('hex')).toBe(nonce);
    expect(() => verifyQuote({ attest, signature, pcrs: [bank([[0, Buffer.alloc(32, 1)], [1, pcrs.values.get(1) as Buffer], [16, pcrs.values.get(16) as Buffer]])], ak, expectedNonce: Buffer.from(nonce, 'hex') })).toThrow(
      expect.objectContaining({ code: 'QUOTE_PCR_DIGEST_MISMATCH' }),
    );
  });

  it('serialises concurrent calls on one session', async () => {
    const results = await Promise.all([
      tpm.readPcrs('sha256', ALL_PCRS),
      tpm.quote(Buffer.from('a'), [{ alg: 'sha256', pcrs: [0] }]),
      tpm.readPcrs('sha1', [0, 1]),
      tpm.quote(Buffer.from('b'), [{ alg: 'sha256', pcrs: [1, 2] }]),
    ]);
    expect(results).toHaveLength(4);
  });

  it('leaves the event loop running while TPM commands are in flight', async () => {
    let ticks = 0;
    let done = false;
    const spin = () => {
      if (done) return;
      ticks++;
      setImmediate(spin);
    };
    setImmediate(spin);
    // Three PCR_Read round trips; blocking calls would finish before any tick.
    await tpm.readPcrs('sha256', ALL_PCRS);
    done = true;
    expect(ticks).toBeGreaterThan(0);
  });

  it('refuses bad arguments before touching the TPM', async () => {
    await expectCode(tpm.quote(Buffer.alloc(65), [{ alg: 'sha256', pcrs: [0] }]), 'INVALID_ARGUMENT');
    await expectCode(tpm.quote(Buffer.alloc(1), []), 'INVALID_ARGUMENT');
    await expectCode(tpm.readPcrs('sha256', [24]), 'INVALID_ARGUMENT');
    await expectCode(tpm.readPcrs('md5' as never, [0]), 'INVALID_ARGUMENT');
    await expectCode(Tpm.open('swtpm:path=relative/tpm.sock'), 'TPM_TCTI_INVALID');
    await expectCode(Tpm.open(`swtpm:path=${join(sw.dir, 'missing.sock')}`), 'TPM_UNAVAILABLE');
  });
});

describe('Tpm when the TPM dies', () => {
  let sw: Swtpm;

  beforeAll(async () => {
    sw = await startSwtpm();
  });

  afterAll(async () => {
    await sw?.dispose();
  });

  it('rejects with TPM_UNAVAILABLE, closes, and works again with the stored AK after a restart', async () => {
    const store = fileAkStore(join(sw.dir, 'ak.key'));
    const tpm = await Tpm.open(sw.tcti, store);
    const akBefore = await tpm.attestationKeyPublic();
    await sw.kill();

    const started = Date.now();
    await expectCode(tpm.quote(Buffer.from('n'), [{ alg: 'sha256', pcrs: [0] }]), 'TPM_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(5000);
    await expectCode(tpm.readPcrs('sha256', [0]), 'TPM_UNAVAILABLE');
    await tpm.close();
    await tpm.close();
    await expectCode(Tpm.open(sw.tcti), 'TPM_UNAVAILABLE');

    await sw.start();
    const again = await Tpm.open(sw.tcti, store);
    try {
      expect(await again.attestationKeyPublic()).toEqual(akBefore);
      const q = await again.quote(Buffer.from('n'), [{ alg: 'sha256', pcrs: [0] }]);
      const ak = parseTpmtPublic(akBefore);
      expect(verifyQuote({ attest: q.attest, signature: q.signature, pcrs: q.banks, ak, expectedNonce: Buffer.from('n') }).banks).toHaveLength(1);
    } finally {
      await again.close();
    }
    await expectCode(again.readPcrs('sha256', [0]), 'TPM_UNAVAILABLE');
  });
});
