/**
 * Confidential-VM evidence in the daemon's epochs: a policy that requires a CVM report keeps a
 * host without one UNTRUSTED; a report from a (fake) configfs-tsm provider is requested over the
 * epoch binding, verified, recorded, and re-appraised offline to the same verdict.
 */
import { describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSwtpm } from '../helpers/swtpm.js';
import { startDaemon, State } from '../helpers/daemon.js';
import { akKey, decode, payloads, verifyDir } from '../helpers/audit-log.js';
import { derOctets, mintHierarchy, mintReport } from '../unit/snp-mint.js';
import { attestd } from '../../daemon/gen/proto.js';
import { startFakeTsm } from './cvm-fake-tsm.js';

const CHIP = Buffer.alloc(64, 0x42);
const milan = mintHierarchy('Milan', 'Milan-B0', { bootloader: 3, tee: 0, snp: 8, microcode: 115 }, derOctets(CHIP));

function cvmPolicy(): string {
  return `version: 2
attestation: { interval: 500ms, max_age: 5s }
pcrs: { sha256: { 16: "${'0'.repeat(64)}" } }
cvm:
  required: true
  type: snp
  snp: { debug: forbidden }
rules:
  - name: all
    match: { uids: [${process.getuid?.() ?? 0}] }
    lease: { ttl: 30s, scopes: ["any"] }
`;
}

describe('confidential-VM evidence in epochs', () => {
  it('a host without a CVM report is UNTRUSTED under a policy that requires one', async () => {
    const tpm = await startSwtpm();
    const root = mkdtempSync(join(tmpdir(), 'attestd-notsm-'));
    const d = await startDaemon({ tcti: tpm.tcti, policy: cvmPolicy(), waitTrusted: false, args: ['--tsm-root', root] });
    try {
      const s = await d.waitFor((st) => st.state === State.UNTRUSTED, 5000);
      expect(s.reasons.join('\n')).toContain('CVM_MISSING');
    } finally {
      await d.stop();
      await tpm.dispose();
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('requests the report over the binding, records it, and the verifier agrees with the verdict', async () => {
    const tpm = await startSwtpm();
    const tsm = startFakeTsm((inblob) => ({ outblob: mintReport({ version: 2, reportedTcb: [3, 0, 0, 0, 0, 0, 8, 115], chipId: CHIP, reportData: inblob }, milan.vcekKey) }));
    const root = tsm.root;
    const d = await startDaemon({ tcti: tpm.tcti, policy: cvmPolicy(), waitTrusted: false, args: ['--tsm-root', root] });
    try {
      const ak = (await d.waitFor((st) => st.epoch >= 2, 5000)).akPublicPem;
      // The minted VCEK does not chain to a pinned AMD root: verified, and refused, every epoch.
      const s = await d.status();
      expect(s.state).toBe(State.UNTRUSTED);
      expect(s.reasons.join('\n')).toMatch(/SNP_CERT_CHAIN_INVALID|no VCEK/);
      d.proc.kill('SIGTERM');
      await d.exited;
      const audit = join(d.stateDir, 'audit');
      const epochs = (await payloads(audit)).map(decode).filter((r) => r.epoch).map((r) => attestd.audit.v1.EpochResult.decode(r.epoch!.result!));
      const withReport = epochs.filter((e) => e.cvm?.report?.length);
      expect(withReport.length).toBeGreaterThan(0);
      // The recorded report carries the epoch's binding as its report data.
      const r = withReport[0]!;
      expect(Buffer.from(r.cvm!.report!).subarray(0x50, 0x70).equals(Buffer.from(r.binding!))).toBe(true);
      const v = await verifyDir(audit, akKey(ak));
      if (!v.ok) throw v.failure;
    } finally {
      tsm.stop();
      await d.stop();
      await tpm.dispose();
    }
  });
});
