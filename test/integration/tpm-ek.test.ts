/**
 * EK certificates read from TPM NV. A swtpm manufactured by swtpm_setup with swtpm_localca
 * holds an RSA 2048 and an ECC P-384 EK certificate issued by a throwaway local CA; they are
 * read through ESYS, cross-checked with tpm2_nvread and tpm2_readpublic, and verified
 * against that CA and against another one. A plain swtpm has no EK certificate; an index we
 * define there ourselves covers owner-authorised, chunked reads and padding.
 */
import { createPublicKey } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { EK_CERT_INDEX } from '../../daemon/evidence/tpm/ek-cert.js';
import { TpmSource } from '../../daemon/evidence/tpm/source.js';
import { Tpm } from '../../daemon/evidence/tpm/tpm.js';
import { verifyEkCertificate } from '../../daemon/verify/ek-cert.js';
import { run, startManufacturedSwtpm, startSwtpm, tpm2, type ManufacturedSwtpm, type Swtpm } from '../helpers/swtpm.js';

const GCE_CERT = join(import.meta.dirname, '../../../shared/fixtures/tpm/gce_cos85_nonce9009_ak_cert.der');
/** swtpm_setup's persistent RSA EK, whose public key the RSA certificate must carry. */
const RSA_EK_HANDLE = '0x81010001';

async function ok(args: string[], tcti: string): Promise<Buffer> {
  const r = await tpm2(args, tcti);
  if (r.code !== 0) throw new Error(`${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof AttestdError ? err.code : String(err);
  }
}

describe('EK certificates of a manufactured swtpm', () => {
  let sw: ManufacturedSwtpm;
  let tpm: Tpm;
  let work: string;
  let localCa: string[];

  beforeAll(async () => {
    sw = await startManufacturedSwtpm({ ekCerts: true });
    tpm = await Tpm.open(sw.tcti);
    work = await mkdtemp(join(tmpdir(), 'attestd-ek-'));
    if (sw.localCa === undefined) throw new Error('no local CA');
    localCa = [sw.localCa.issuerPem, sw.localCa.rootPem];
  });

  afterAll(async () => {
    await tpm?.close();
    await sw?.dispose();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('reads the RSA and ECC P-384 certificates, as tpm2_nvread does', async () => {
    const certs = await tpm.ekCertificates();
    expect(certs.rsa).toBeDefined();
    expect(certs.eccP384).toBeDefined();
    expect(certs.ecc).toBeUndefined();
    const viaTool = await ok(['nvread', `0x${EK_CERT_INDEX.rsa.toString(16)}`, '-C', 'o'], sw.tcti);
    expect(certs.rsa?.equals(viaTool)).toBe(true);
  });

  it('verifies both against the local CA, with the TPM fields from the SAN', async () => {
    const certs = await tpm.ekCertificates();
    const rsa = verifyEkCertificate(certs.rsa as Buffer, localCa, new Date());
    expect(rsa.chain).toHaveLength(3);
    expect(rsa.chain[1]).toBe('CN=swtpm-localca');
    expect(rsa.chain[2]).toBe('CN=swtpm-localca-rootca');
    expect(rsa.tpm).toEqual({
      manufacturer: 'id:00001014',
      model: 'swtpm',
      version: 'id:20191023',
      specification: { family: '2.0', level: 0, revision: 164 },
    });
    const ecc = verifyEkCertificate(certs.eccP384 as Buffer, localCa, new Date());
    expect(ecc.publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
  });

  it('certifies the EK that the TPM holds', async () => {
    const certs = await tpm.ekCertificates();
    const pemFile = join(work, 'ek.pem');
    await ok(['readpublic', '-c', RSA_EK_HANDLE, '-f', 'pem', '-o', pemFile], sw.tcti);
    const tpmKey = createPublicKey(await readFile(pemFile));
    const certKey = verifyEkCertificate(certs.rsa as Buffer, localCa, new Date()).publicKey;
    expect(certKey.equals(tpmKey)).toBe(true);
  });

  it('rejects them against another CA with the same names', async () => {
    const certs = await tpm.ekCertificates();
    const key = join(work, 'other.key');
    const crt = join(work, 'other.pem');
    // Same subject as the real root and intermediate, other keys: only the signatures differ.
    for (const cn of ['swtpm-localca-rootca', 'swtpm-localca']) {
      await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-keyout', key, '-out', crt, '-days', '2', '-subj', `/CN=${cn}`,
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
      const other = await readFile(crt, 'utf8');
      expect(codeOf(() => verifyEkCertificate(certs.rsa as Buffer, [other], new Date()))).toBe('EK_CERT_INVALID');
    }
    expect(codeOf(() => verifyEkCertificate(certs.rsa as Buffer, [sw.localCa?.rootPem ?? ''], new Date()))).toBe('EK_CERT_INVALID');
  });

  it('is served by TpmSource', async () => {
    const source = new TpmSource(sw.tcti);
    try {
      const certs = await source.ekCertificates();
      expect(Object.keys(certs).sort()).toEqual(['eccP384', 'rsa']);
    } finally {
      await source.close();
    }
  });
});

describe('EK certificates of a plain swtpm', () => {
  let sw: Swtpm;
  let tpm: Tpm;
  let work: string;

  beforeAll(async () => {
    sw = await startSwtpm();
    tpm = await Tpm.open(sw.tcti);
    work = await mkdtemp(join(tmpdir(), 'attestd-ek-'));
  });

  afterAll(async () => {
    await tpm?.close();
    await sw?.dispose();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('has none: missing indices are absent, not errors', async () => {
    expect(await tpm.ekCertificates()).toEqual({});
  });

  it('reads an owner-readable index in chunks and trims the padding after the certificate', async () => {
    const cert = await readFile(GCE_CERT);
    const padded = Buffer.concat([cert, Buffer.alloc(1500 - cert.length, 0xff)]);
    const file = join(work, 'padded.bin');
    await writeFile(file, padded);
    const index = `0x${EK_CERT_INDEX.ecc.toString(16)}`;
    // Unwritten first: defined but never written reads as absent.
    await ok(['nvdefine', index, '-C', 'o', '-s', String(padded.length), '-a', 'ownerread|ownerwrite|no_da'], sw.tcti);
    expect((await tpm.ekCertificates()).ecc).toBeUndefined();
    await ok(['nvwrite', index, '-C', 'o', '-i', file], sw.tcti);
    const certs = await tpm.ekCertificates();
    expect(certs.ecc?.equals(cert)).toBe(true);
    expect(certs.rsa).toBeUndefined();
  });
});

describe('EK certificate and host inventory at session start', () => {
  it('records the EK certificate verified against the vendor CA folder, and the host inventory in an early epoch', async () => {
    const { startManufacturedSwtpm } = await import('../helpers/swtpm.js');
    const { startDaemon } = await import('../helpers/daemon.js');
    const { decode, payloads } = await import('../helpers/audit-log.js');
    const { attestd } = await import('../../daemon/gen/proto.js');
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const tpm = await startManufacturedSwtpm({ ekCerts: true });
    const ca = mkdtempSync(join(tmpdir(), 'attestd-ekca-'));
    writeFileSync(join(ca, 'issuer.pem'), tpm.localCa!.issuerPem);
    writeFileSync(join(ca, 'root.pem'), tpm.localCa!.rootPem);
    const d = await startDaemon({ tcti: tpm.tcti, args: ['--ek-ca', ca] });
    try {
      await d.waitFor((s) => s.epoch >= 3, 10_000);
      d.proc.kill('SIGTERM');
      await d.exited;
      const recs = (await payloads(join(d.stateDir, 'audit'))).map(decode);
      const start = recs.find((r) => r.sessionStart)!.sessionStart!;
      expect(start.ekCertificates!.length).toBeGreaterThan(0);
      expect(start.ekVerification).toMatch(/^verified: rsa: .* -> .*; ecc-p384: .* -> /);
      const inv = recs.filter((r) => r.epoch).map((r) => attestd.audit.v1.EpochResult.decode(r.epoch!.result!)).find((e) => e.hostInventory);
      expect(JSON.parse(inv!.hostInventory!)).toHaveProperty('os');
    } finally {
      await d.stop();
      await tpm.dispose();
      rmSync(ca, { recursive: true, force: true });
    }
  });
  it('does not take an intermediate in the CA folder as an anchor: without the root, every EK fails', async () => {
    const { startManufacturedSwtpm } = await import('../helpers/swtpm.js');
    const { startDaemon } = await import('../helpers/daemon.js');
    const { decode, payloads } = await import('../helpers/audit-log.js');
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const tpm = await startManufacturedSwtpm({ ekCerts: true });
    const ca = mkdtempSync(join(tmpdir(), 'attestd-ekca-'));
    writeFileSync(join(ca, 'issuer.pem'), tpm.localCa!.issuerPem);
    const d = await startDaemon({ tcti: tpm.tcti, args: ['--ek-ca', ca] });
    try {
      await d.waitFor((s) => s.epoch >= 1, 10_000);
      d.proc.kill('SIGTERM');
      await d.exited;
      const start = (await payloads(join(d.stateDir, 'audit'))).map(decode).find((r) => r.sessionStart)!.sessionStart!;
      expect(start.ekVerification).toMatch(/^failed: rsa: .*not a self-signed root.*; ecc-p384: .*not a self-signed root/);
    } finally {
      await d.stop();
      await tpm.dispose();
      rmSync(ca, { recursive: true, force: true });
    }
  });
});
