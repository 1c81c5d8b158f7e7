/**
 * Allocated PCR banks on a software TPM, cross-checked with tpm2_getcap: swtpm's own default
 * state, and a state swtpm_setup manufactured with the SHA-256 and SHA-384 banks, on which a
 * quote over both banks at once verifies.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { TpmSource } from '../../daemon/evidence/tpm/source.js';
import { Tpm } from '../../daemon/evidence/tpm/tpm.js';
import { verifyQuote } from '../../daemon/verify/quote.js';
import { isHashAlg, type HashAlg } from '../../daemon/verify/tpm-alg.js';
import { parseTpmtPublic } from '../../daemon/verify/tpm-public.js';
import { startManufacturedSwtpm, startSwtpm, tpm2, type Swtpm } from '../helpers/swtpm.js';

const ALL_PCRS = Array.from({ length: 24 }, (_, i) => i);

/** Banks tpm2_getcap lists with at least one PCR selected. */
async function toolBanks(tcti: string): Promise<HashAlg[]> {
  const r = await tpm2(['getcap', 'pcrs'], tcti);
  if (r.code !== 0) throw new Error(`tpm2_getcap pcrs: ${r.stderr}`);
  const out: HashAlg[] = [];
  for (const line of r.stdout.toString().split('\n')) {
    const m = /^\s*-\s*(\w+):\s*\[(.*)\]/.exec(line);
    if (m?.[1] !== undefined && isHashAlg(m[1]) && (m[2] ?? '').trim() !== '') out.push(m[1]);
  }
  return out;
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (e: unknown) => (e instanceof AttestdError ? e.code : String(e)),
  );
}

describe('PCR banks of swtpm in its default state', () => {
  let sw: Swtpm;
  let tpm: Tpm;

  beforeAll(async () => {
    sw = await startSwtpm();
    tpm = await Tpm.open(sw.tcti);
  });

  afterAll(async () => {
    await tpm?.close();
    await sw?.dispose();
  });

  // A state libtpms creates itself (no swtpm_setup) has every bank it implements allocated.
  it('lists the same banks as tpm2_getcap, sha1 and sha256 among them', async () => {
    const banks = await tpm.pcrBanks();
    expect(banks).toEqual(await toolBanks(sw.tcti));
    expect(banks).toEqual(expect.arrayContaining(['sha1', 'sha256']));
  });

  it('is served by TpmSource too', async () => {
    const source = new TpmSource(sw.tcti);
    try {
      expect(await source.pcrBanks()).toEqual(await tpm.pcrBanks());
    } finally {
      await source.close();
    }
  });
});

describe('PCR banks of a swtpm manufactured with sha256 and sha384', () => {
  let sw: Swtpm;
  let tpm: Tpm;

  beforeAll(async () => {
    sw = await startManufacturedSwtpm({ pcrBanks: ['sha256', 'sha384'] });
    tpm = await Tpm.open(sw.tcti);
  });

  afterAll(async () => {
    await tpm?.close();
    await sw?.dispose();
  });

  it('lists exactly the allocated banks, as tpm2_getcap does', async () => {
    const banks = await tpm.pcrBanks();
    expect(banks).toEqual(['sha256', 'sha384']);
    expect(banks).toEqual(await toolBanks(sw.tcti));
  });

  it('quotes sha256 and sha384 together, and the quote verifies', async () => {
    const ext = await tpm2(['pcrextend', `16:sha256=${'ab'.repeat(32)},sha384=${'cd'.repeat(48)}`], sw.tcti);
    expect(ext.code).toBe(0);
    const nonce = randomBytes(32);
    const q = await tpm.quote(nonce, [
      { alg: 'sha256', pcrs: ALL_PCRS },
      { alg: 'sha384', pcrs: ALL_PCRS },
    ]);
    const ak = parseTpmtPublic(await tpm.attestationKeyPublic());
    const v = verifyQuote({ attest: q.attest, signature: q.signature, pcrs: q.banks, ak, expectedNonce: nonce });
    expect(v.attest.pcrSelections.map((s) => s.alg)).toEqual(['sha256', 'sha384']);
    expect(v.banks[1]?.values.get(16)?.length).toBe(48);
    expect(v.banks[1]?.values.get(16)?.equals(Buffer.alloc(48))).toBe(false);

    // Values from another bank do not hash to the quoted digest.
    const swapped = q.banks.map((b) => ({ alg: b.alg, values: new Map(b.values) }));
    swapped[1]?.values.set(16, Buffer.alloc(48));
    expect(() => verifyQuote({ attest: q.attest, signature: q.signature, pcrs: swapped, ak, expectedNonce: nonce })).toThrow(
      expect.objectContaining({ code: 'QUOTE_PCR_DIGEST_MISMATCH' }),
    );
  });

  it('refuses to quote a bank that is not allocated', async () => {
    expect(await codeOf(tpm.quote(randomBytes(8), [{ alg: 'sha1', pcrs: [0] }]))).toBe('TPM_COMMAND_FAILED');
  });
});

describe('the daemon quotes every allocated bank', () => {
  it('records the policy PCRs in each allocated bank but SHA-1, and SHA-1 too once the policy opts in', async () => {
    const { startSwtpm: start } = await import('../helpers/swtpm.js');
    const { startDaemon, testPolicy } = await import('../helpers/daemon.js');
    const { decode, payloads } = await import('../helpers/audit-log.js');
    const { attestd } = await import('../../daemon/gen/proto.js');
    const { join } = await import('node:path');
    const banksOf = async (policy: string) => {
      const tpm = await start();
      const d = await startDaemon({ tcti: tpm.tcti, policy });
      try {
        d.proc.kill('SIGTERM');
        await d.exited;
        const e = (await payloads(join(d.stateDir, 'audit'))).map(decode).filter((r) => r.epoch)
          .map((r) => attestd.audit.v1.EpochResult.decode(r.epoch!.result!)).find((x) => x.pass)!;
        return (e.tpm!.banks ?? []).map((b) => b.alg);
      } finally {
        await d.stop();
        await tpm.dispose();
      }
    };
    const plain = await banksOf(testPolicy());
    expect(plain).toContain('sha256');
    expect(plain).toContain('sha384');
    expect(plain).not.toContain('sha1');
    const withSha1 = await banksOf(testPolicy().replace('version: 1\n', 'version: 1\nallow_sha1: true\n'));
    expect(withSha1).toContain('sha1');
  });
});
