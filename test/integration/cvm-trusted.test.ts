/**
 * The passing path of confidential-VM evidence through the daemon: test AMD roots given with
 * --cvm-roots (an RSA-4096 ARK -> ASK like AMD's, an ECDSA P-384 VCEK), a fake configfs-tsm
 * that signs each report over the inblob the daemon writes, and a policy that pins the launch
 * measurement. The host becomes TRUSTED and a lease is granted; when the CVM evidence drifts
 * (another measurement) the epoch fails and the lease is revoked; the session start records
 * the roots in force; `attestctl audit verify` passes given the same roots and refuses the
 * log without them. The same for TDX with a test Intel root -> PCK chain, QE report and
 * collateral (tdx-mint.ts), the drift being another MRTD.
 */
import { describe, it, expect } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { startSwtpm } from '../helpers/swtpm.js';
import { attestctl, startDaemon, State } from '../helpers/daemon.js';
import { decode, payloads } from '../helpers/audit-log.js';
import { CERT_GUID, derOctets, mintCertTable, mintHierarchy, mintReport } from '../unit/snp-mint.js';
import { startFakeTsm } from './cvm-fake-tsm.js';
import { parseAmdCertificate } from '../../daemon/verify/snp/chain.js';
import { attestd } from '../../daemon/gen/proto.js';
import { mintIntelPki } from '../unit/tdx-mint.js';

const CHIP = Buffer.alloc(64, 0x42);
const TCB_BYTES = [3, 0, 0, 0, 0, 0, 8, 115];
const GOOD = Buffer.alloc(48, 0x5a);
const DRIFTED = Buffer.alloc(48, 0x6b);
const amd = mintHierarchy('Milan', 'Milan-B0', { bootloader: 3, tee: 0, snp: 8, microcode: 115 }, derOctets(CHIP), { rsaBits: 4096 });
const table = mintCertTable([[CERT_GUID.VCEK, amd.vcek], [CERT_GUID.ASK, amd.ask], [CERT_GUID.ARK, amd.ark]]);
const pem = (der: Buffer) => `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`;

function policy(): string {
  return `version: 2
attestation: { interval: 500ms, max_age: 5s }
pcrs: { sha256: { 16: "${'0'.repeat(64)}" } }
cvm:
  required: true
  type: snp
  snp:
    debug: forbidden
    measurements: ["${GOOD.toString('hex')}"]
    min_tcb: { bootloader: 3, tee: 0, snp: 8, microcode: 115 }
rules:
  - name: all
    match: { uids: [${process.getuid?.() ?? 0}] }
    lease: { ttl: 30s, scopes: ["any"] }
`;
}

describe('confidential-VM evidence that passes', () => {
  it('TRUSTED on a passing SEV-SNP report under configured roots; drift revokes; the auditor needs the same roots', async () => {
    let measurement = GOOD;
    const tsm = startFakeTsm((inblob) => ({
      outblob: mintReport({ version: 2, reportedTcb: TCB_BYTES, chipId: CHIP, reportData: inblob, measurement }, amd.vcekKey),
      auxblob: table,
    }));
    const roots = mkdtempSync(join(tmpdir(), 'attestd-roots-'));
    mkdirSync(join(roots, 'amd'));
    writeFileSync(join(roots, 'amd', 'ark.pem'), pem(amd.ark));
    const tpm = await startSwtpm();
    const d = await startDaemon({ tcti: tpm.tcti, policy: policy(), waitTrusted: false, args: ['--tsm-root', tsm.root, '--cvm-roots', roots] });
    try {
      const trusted = await d.waitFor((s) => s.state === State.TRUSTED, 15_000);
      const c = await d.client();
      const lease = (await c.call({ acquireLease: {} })).acquireLease!.lease!;
      expect(lease.leaseId).toBeTruthy();
      const events: attestd.lease.v1.LeaseEvent.$Properties[] = [];
      await c.call({ watchLease: { leaseId: lease.leaseId } }, (r) => events.push(r.leaseEvent!));

      measurement = DRIFTED;
      const drifted = await d.waitFor((s) => s.state === State.UNTRUSTED, 10_000);
      expect(drifted.reasons.join('\n')).toContain('SNP_MEASUREMENT_MISMATCH');
      const end = Date.now() + 5000;
      while (Date.now() < end && !events.some((e) => e.kind === attestd.lease.v1.LeaseEvent.Kind.REVOKED)) await new Promise((r) => setTimeout(r, 25));
      expect(events.some((e) => e.kind === attestd.lease.v1.LeaseEvent.Kind.REVOKED)).toBe(true);
      c.close();
      d.proc.kill('SIGTERM');
      await d.exited;

      const audit = join(d.stateDir, 'audit');
      const records = (await payloads(audit)).map(decode);
      const start = records.find((r) => r.sessionStart)!.sessionStart!;
      const arkSpki = createHash('sha256').update(parseAmdCertificate(amd.ark).spki).digest();
      const amdRoots = (start.cvmTrustRoots ?? []).filter((r) => r.vendor === 'amd');
      expect(amdRoots).toHaveLength(1);
      expect(Buffer.from(amdRoots[0]!.spkiSha256!).equals(arkSpki)).toBe(true);
      expect(Buffer.from(amdRoots[0]!.certificate!).equals(amd.ark)).toBe(true);
      expect(records.some((r) => r.leaseDecision?.kind === attestd.audit.v1.LeaseDecision.Kind.GRANT)).toBe(true);

      const akPath = join(roots, 'ak.pem');
      writeFileSync(akPath, trusted.akPublicPem);
      const ok = await attestctl(['audit', 'verify', audit, '--ak', akPath, '--cvm-roots', roots, '--json']);
      expect(ok.code, ok.stdout + ok.stderr).toBe(0);
      const summary = JSON.parse(ok.stdout) as { verified: boolean; passingEpochs: number; grants: number };
      expect(summary).toMatchObject({ verified: true, grants: 1 });
      expect(summary.passingEpochs).toBeGreaterThan(0);
      // Without the roots the auditor does not take the host's word for them.
      const refused = await attestctl(['audit', 'verify', audit, '--ak', akPath, '--json']);
      expect(refused.code).toBe(8);
      expect(JSON.parse(refused.stdout)).toMatchObject({ verified: false, check: 'cvm-roots' });
    } finally {
      await d.stop();
      await tpm.dispose();
      tsm.stop();
      rmSync(roots, { recursive: true, force: true });
    }
  });

  it('TRUSTED on a passing TDX quote under a configured Intel root; MRTD drift revokes; the auditor re-appraises with the same root', async () => {
    const pki = mintIntelPki();
    let mrTd = pki.mrTd;
    const tsm = startFakeTsm((inblob) => ({ outblob: pki.quote(inblob, mrTd), provider: 'tdx_guest' }));
    const roots = mkdtempSync(join(tmpdir(), 'attestd-roots-'));
    mkdirSync(join(roots, 'intel'));
    writeFileSync(join(roots, 'intel', 'root.pem'), pem(pki.root));
    const collateral = join(roots, 'collateral');
    mkdirSync(collateral);
    for (const f of pki.collateral) writeFileSync(join(collateral, f.name), f.bytes);
    const tdxPolicy = `version: 2
attestation: { interval: 500ms, max_age: 5s }
pcrs: { sha256: { 16: "${'0'.repeat(64)}" } }
cvm:
  required: true
  type: tdx
  collateral: ${collateral}
  tdx: { debug: forbidden, mrtd: ["${pki.mrTd.toString('hex')}"] }
rules:
  - name: all
    match: { uids: [${process.getuid?.() ?? 0}] }
    lease: { ttl: 30s, scopes: ["any"] }
`;
    const tpm = await startSwtpm();
    const d = await startDaemon({ tcti: tpm.tcti, policy: tdxPolicy, waitTrusted: false, args: ['--tsm-root', tsm.root, '--cvm-roots', roots] });
    try {
      const trusted = await d.waitFor((s) => s.state === State.TRUSTED, 15_000);
      const c = await d.client();
      const lease = (await c.call({ acquireLease: {} })).acquireLease!.lease!;
      const events: attestd.lease.v1.LeaseEvent.$Properties[] = [];
      await c.call({ watchLease: { leaseId: lease.leaseId } }, (r) => events.push(r.leaseEvent!));
      mrTd = Buffer.alloc(48, 0x11);
      const drifted = await d.waitFor((s) => s.state === State.UNTRUSTED, 10_000);
      expect(drifted.reasons.join('\n')).toMatch(/MRTD/);
      const end = Date.now() + 5000;
      while (Date.now() < end && !events.some((e) => e.kind === attestd.lease.v1.LeaseEvent.Kind.REVOKED)) await new Promise((r) => setTimeout(r, 25));
      expect(events.some((e) => e.kind === attestd.lease.v1.LeaseEvent.Kind.REVOKED)).toBe(true);
      c.close();
      d.proc.kill('SIGTERM');
      await d.exited;

      const audit = join(d.stateDir, 'audit');
      const akPath = join(roots, 'ak.pem');
      writeFileSync(akPath, trusted.akPublicPem);
      const ok = await attestctl(['audit', 'verify', audit, '--ak', akPath, '--cvm-roots', roots, '--collateral', collateral, '--json']);
      expect(ok.code, ok.stdout + ok.stderr).toBe(0);
      expect(JSON.parse(ok.stdout)).toMatchObject({ verified: true, grants: 1 });
      const refused = await attestctl(['audit', 'verify', audit, '--ak', akPath, '--collateral', collateral, '--json']);
      expect(JSON.parse(refused.stdout)).toMatchObject({ verified: false, check: 'cvm-roots' });
    } finally {
      await d.stop();
      await tpm.dispose();
      tsm.stop();
      rmSync(roots, { recursive: true, force: true });
    }
  });

  it('refuses to start with a --cvm-roots folder that holds no usable root', async () => {
    const roots = mkdtempSync(join(tmpdir(), 'attestd-roots-'));
    mkdirSync(join(roots, 'amd'));
    writeFileSync(join(roots, 'amd', 'ask.pem'), pem(amd.ask));
    const tpm = await startSwtpm();
    try {
      await expect(startDaemon({ tcti: tpm.tcti, policy: policy(), waitTrusted: false, args: ['--cvm-roots', roots] }))
        .rejects.toMatchObject({ output: expect.stringContaining('INVALID_ARGUMENT') });
    } finally {
      await tpm.dispose();
      rmSync(roots, { recursive: true, force: true });
    }
  });
});
