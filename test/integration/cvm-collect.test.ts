/**
 * Confidential-VM collection through a fake configfs-tsm tree: a fake provider (this test)
 * answers each new entry's inblob with an SEV-SNP report it signs with a minted VCEK
 * hierarchy, plus the certificate table in auxblob, as the kernel's sev_guest provider does.
 * The real collection code writes, reads and checks generations; the real verifier checks the
 * chain, the signature and the binding.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CvmSource } from '../../daemon/evidence/cvm/source.js';
import { tsmReport } from '../../daemon/evidence/cvm/tsm.js';
import { verifyCvmEvidence } from '../../daemon/verify/cvm/verify.js';
import { parseSnpCertTable } from '../../daemon/verify/cvm/snp-certs.js';
import { derOctets, mintCertTable, mintHierarchy, mintReport } from '../unit/snp-mint.js';

const CHIP = Buffer.alloc(64, 0x42);
const milan = mintHierarchy('Milan', 'Milan-B0', { bootloader: 3, tee: 0, snp: 8, microcode: 115 }, derOctets(CHIP));
const AT = new Date('2030-01-01T00:00:00Z');

/** The SNP certificate table the host hands out: GUID entries, then the certificates. */
function certTable(): Buffer {
  return mintCertTable([['63da758d-e664-4564-adc5-f4b93be8accd', milan.vcek], ['4ab7b379-bbac-4fe4-a02f-05aef327c782', milan.ask],
    ['c0b406a4-a803-4952-9743-3fb6014cd0ae', milan.ark]]);
}

/** Polls the fake tree and answers every entry whose inblob has no outblob yet. */
function fakeProvider(root: string, opts: { tamperReportData?: boolean; bumpGeneration?: boolean } = {}): () => void {
  const timer = setInterval(() => {
    const reports = join(root, 'report');
    for (const name of readdirSync(reports)) {
      const dir = join(reports, name);
      if (!existsSync(join(dir, 'inblob')) || existsSync(join(dir, 'outblob'))) continue;
      const data = readFileSync(join(dir, 'inblob'));
      if (data.length !== 64) continue;
      const reportData = opts.tamperReportData ? randomBytes(64) : data;
      writeFileSync(join(dir, 'provider'), 'sev_guest\n');
      writeFileSync(join(dir, 'auxblob'), certTable());
      writeFileSync(join(dir, 'generation'), opts.bumpGeneration ? String(Date.now()) : '1');
      writeFileSync(join(dir, 'outblob'), mintReport({ version: 2, reportedTcb: [3, 0, 0, 0, 0, 0, 8, 115], chipId: CHIP, reportData }, milan.vcekKey));
    }
    if (opts.bumpGeneration) for (const name of readdirSync(reports)) writeFileSync(join(reports, name, 'generation'), String(Date.now()));
  }, 5);
  return () => clearInterval(timer);
}

let root: string;
let stop: (() => void) | undefined;
function tree(): string {
  root = mkdtempSync(join(tmpdir(), 'attestd-tsm-'));
  mkdirSync(join(root, 'report'));
  return root;
}
afterEach(() => {
  stop?.();
  rmSync(root, { recursive: true, force: true });
});

describe('confidential-VM collection (fake configfs-tsm)', () => {
  it('requests a report over the binding and verifies it, chain and binding included', async () => {
    stop = fakeProvider(tree());
    const binding = randomBytes(32);
    const got = await new CvmSource({ tsmRoot: root, sevGuest: '/nonexistent', tdxGuest: '/nonexistent' }).collect(binding);
    expect(got).toMatchObject({ kind: 'snp', via: 'configfs-tsm', provider: 'sev_guest' });
    expect(parseSnpCertTable(got!.certTable!).keyKind).toBe('VCEK');
    const v = verifyCvmEvidence({ kind: 'snp', report: got!.report, certTable: got!.certTable, collateral: [], binding, at: AT, roots: { amd: [milan.ark] } });
    expect(v, JSON.stringify(v)).toMatchObject({ ok: true });
    // The same report does not pass for another epoch's binding.
    const other = verifyCvmEvidence({ kind: 'snp', report: got!.report, certTable: got!.certTable, collateral: [], binding: randomBytes(32), at: AT, roots: { amd: [milan.ark] } });
    expect(other).toMatchObject({ ok: false, reason: { code: 'CVM_BINDING_MISMATCH' } });
  });

  it('rejects a report that does not carry the binding', async () => {
    stop = fakeProvider(tree(), { tamperReportData: true });
    const binding = randomBytes(32);
    const got = await new CvmSource({ tsmRoot: root }).collect(binding);
    const v = verifyCvmEvidence({ kind: 'snp', report: got!.report, certTable: got!.certTable, collateral: [], binding, at: AT, roots: { amd: [milan.ark] } });
    expect(v).toMatchObject({ ok: false, reason: { code: 'CVM_BINDING_MISMATCH' } });
  });

  it('refuses a report when another writer keeps changing the entry', async () => {
    stop = fakeProvider(tree(), { bumpGeneration: true });
    await expect(tsmReport(randomBytes(64), { root, timeoutMs: 2000 })).rejects.toMatchObject({ code: 'CVM_UNAVAILABLE' });
  });

  it('verifies with certificates from collateral files when the host gives none, and fails with a foreign root', async () => {
    stop = fakeProvider(tree());
    const binding = randomBytes(32);
    const got = await new CvmSource({ tsmRoot: root }).collect(binding);
    const files = [{ name: 'vcek.der', bytes: milan.vcek }, { name: 'chain.der', bytes: milan.ask }, { name: 'root', bytes: milan.ark }];
    expect(verifyCvmEvidence({ kind: 'snp', report: got!.report, collateral: files, binding, at: AT, roots: { amd: [milan.ark] } }).ok).toBe(true);
    const v = verifyCvmEvidence({ kind: 'snp', report: got!.report, collateral: files, binding, at: AT });
    expect(v).toMatchObject({ ok: false, reason: { code: 'SNP_CERT_CHAIN_INVALID' } });
  });

  it('reports nothing on a host without any confidential-VM interface', async () => {
    tree();
    rmSync(join(root, 'report'), { recursive: true });
    expect(await new CvmSource({ tsmRoot: root, sevGuest: '/nonexistent', tdxGuest: '/nonexistent' }).collect(randomBytes(32))).toBeUndefined();
  });

  it('the legacy device path reports a clear error when the device cannot be used', async () => {
    const { cvmReport } = await import('../../daemon/native.js');
    await expect(cvmReport('snp', '/nonexistent/sev-guest', Buffer.alloc(64))).rejects.toMatchObject({ code: 'CVM_UNAVAILABLE' });
    await expect(cvmReport('snp', '/dev/null', Buffer.alloc(64))).rejects.toMatchObject({ code: 'CVM_UNAVAILABLE' });
    await expect(cvmReport('tdx', '/dev/sev', Buffer.alloc(63))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
