/**
 * attestctl audit explain: a lease's story from the log alone, field by field, for a lease that
 * was renewed and released and for one revoked by a PCR drift.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttestdClient } from '../../daemon/client/client.js';
import { ATTESTCTL, runToEnd, startDaemon, State, type RunningDaemon } from '../helpers/daemon.js';
import { startSwtpm, tpm2, type Swtpm } from '../helpers/swtpm.js';

describe('audit explain', () => {
  let sw: Swtpm;
  let d: RunningDaemon;
  let client: AttestdClient;
  let released = '';
  let revoked = '';
  const explain = (...args: string[]) => runToEnd(process.execPath, [ATTESTCTL, 'audit', 'explain', ...args], {}, 30_000);

  beforeAll(async () => {
    sw = await startSwtpm();
    d = await startDaemon({ tcti: sw.tcti });
    client = await d.client();
    released = (await client.call({ acquireLease: { intent: {
      artifacts: [{ name: 'weights', sha256: Buffer.alloc(32, 7) }], jobId: 'job-42', labels: { team: 'vision' },
    } } })).acquireLease!.lease!.leaseId!;
    await client.call({ renewLease: { leaseId: released } });
    await client.call({ releaseLease: { leaseId: released } });
    revoked = (await client.call({ acquireLease: {} })).acquireLease!.lease!.leaseId!;
    const r = await tpm2(['pcrextend', `16:sha256=${'0'.repeat(63)}1`], sw.tcti);
    expect(r.code, r.stderr).toBe(0);
    await d.waitFor((s) => s.state === State.UNTRUSTED, 10_000);
    client.close();
    d.proc.kill('SIGTERM');
    await d.exited;
  }, 60_000);

  afterAll(async () => {
    await d?.stop();
    await sw?.dispose();
  });

  it('tells a renewed and released lease: holder, rule, the epoch and its evidence, the renewal, the release', async () => {
    const r = await explain(released, join(d.stateDir, 'audit'), '--json');
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.leaseId).toBe(released);
    expect(s.rule).toBe('tests');
    expect(s.workload.pid).toBe(process.pid);
    expect(s.workload.exeSha256).toMatch(/^[0-9a-f]{64}$/);
    const e = s.granted.epoch;
    expect(e.pass).toBe(true);
    expect(e.evidence.tpm).toBe('passed');
    expect(Object.values(e.evidence).every((v) => v === 'passed')).toBe(true);
    expect(e.quote.pcrDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(Number(e.quote.clockMs)).toBeGreaterThan(0);
    expect(e.policyFile).toBe(d.policyPath);
    expect(e.policySha256).toMatch(/^[0-9a-f]{64}$/);
    expect(s.granted.expiresAtMs).toBeLessThanOrEqual(e.validUntilMs);
    expect(s.renewals).toHaveLength(1);
    expect(s.renewals[0].atMs).toBeGreaterThanOrEqual(s.granted.atMs);
    expect(s.ended.how).toBe('released');
    expect(s.ended.seq).toBeGreaterThan(s.renewals[0].seq);
    expect(s.intent.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(s.intent.jobId).toBe('job-42');
    expect(s.intent.labels).toEqual({ team: 'vision' });
    expect(s.intent.artifacts).toEqual([{ name: 'weights', sha256: '07'.repeat(32), measured: false }]);
    expect(s.intent.cmdline.length).toBeGreaterThan(0);
    const text = await explain(released, join(d.stateDir, 'audit'));
    expect(text.stdout).toMatch(/rule tests/);
    expect(text.stdout).toMatch(/renewed .* until/);
    expect(text.stdout).toMatch(/released/);
    expect(text.stdout).toMatch(/artifact weights: sha256 (07){32} declared/);
  });

  it('tells a lease revoked by drift, with the reason', async () => {
    const s = JSON.parse((await explain(revoked, join(d.stateDir, 'audit'), '--json')).stdout);
    expect(s.renewals).toEqual([]);
    expect(s.intent).toBeUndefined();
    expect(s.ended.how).toBe('revoked');
    expect(s.ended.code).toMatch(/NOT_TRUSTED|PCR/);
  });

  it('says when the log never granted the lease, and refuses a malformed id', async () => {
    expect((await explain('0'.repeat(32), join(d.stateDir, 'audit'))).code).toBe(1);
    expect((await explain('nope', join(d.stateDir, 'audit'))).code).toBe(2);
  });
});
