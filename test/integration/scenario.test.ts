/**
 * The spine scenario, end to end on a software TPM: start, acquire, watch, extend PCR 16,
 * see the revocation at the watcher and the `attestctl run` child stopped, reset PCR 16, see
 * a new epoch and a new lease granted.
 */
import { describe, it, expect } from 'vitest';
import { once } from 'node:events';
import { tpm2 } from '../helpers/swtpm.js';
import { sharedDaemon, spawnAttestctl, State } from '../helpers/daemon.js';
import { attestd } from '../../daemon/gen/proto.js';

const Kind = attestd.lease.v1.LeaseEvent.Kind;
const INTERVAL_MS = 500;

const env = sharedDaemon();

describe('drift revokes every lease and stops supervised work; recovery needs a new epoch', () => {
  it('runs the whole scenario', async () => {
    const trusted = await env().d.status();
    expect(trusted.state).toBe(State.TRUSTED);
    expect(trusted.akPublicPem).toContain('BEGIN PUBLIC KEY');

    // A workload (this test process) acquires and watches.
    const client = await env().d.client();
    const lease = (await client.call({ acquireLease: {} })).acquireLease!.lease!;
    expect(lease.rule).toBe('tests');
    const events: { kind: number; at: number; reasonCode: string }[] = [];
    const first = await client.call({ watchLease: { leaseId: lease.leaseId } }, (r) =>
      events.push({ kind: r.leaseEvent!.kind ?? 0, at: Date.now(), reasonCode: r.leaseEvent!.reasonCode ?? '' }));
    expect(first.leaseEvent!.kind).toBe(Kind.ACTIVE);

    // A supervised child under attestctl run.
    const run = spawnAttestctl(['run', '--grace', '1', '--', 'sleep', '300'], env().d.socket);
    let runErr = '';
    run.stderr!.on('data', (b) => (runErr += b));
    const runExit = once(run, 'exit');
    const deadline = Date.now() + 10_000;
    while (!runErr.includes('child started') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(runErr).toContain('child started');
    expect((await env().d.status()).activeLeases).toBe(2);

    // Drift: extend the debug PCR.
    const ext = await tpm2(['pcrextend', `16:sha256=${'11'.repeat(32)}`], env().tpm.tcti);
    expect(ext.code).toBe(0);
    const driftAt = Date.now();
    const revoked = () => events.find((e) => e.kind === Kind.REVOKED);
    while (!revoked() && Date.now() < driftAt + 5000) await new Promise((r) => setTimeout(r, 5));
    expect(revoked()).toMatchObject({ kind: Kind.REVOKED, reasonCode: 'NOT_TRUSTED' });
    const latency = revoked()!.at - driftAt;
    // The next appraisal sees the drift: at most one interval plus the appraisal itself.
    expect(latency).toBeLessThanOrEqual(INTERVAL_MS + 400);

    const [code] = await runExit;
    expect(code).toBe(88);
    expect(runErr).toContain('lease lost');

    const untrusted = await env().d.status();
    expect(untrusted.state).toBe(State.UNTRUSTED);
    expect(untrusted.reasons.join('\n')).toMatch(/PCR_MISMATCH|sha256:16/);
    expect(untrusted.activeLeases).toBe(0);
    await expect(client.call({ acquireLease: {} })).rejects.toMatchObject({ code: 'NOT_TRUSTED' });
    await expect(client.call({ renewLease: { leaseId: lease.leaseId } })).rejects.toMatchObject({ code: 'LEASE_NOT_FOUND' });

    // Recovery: reset PCR 16; a fresh passing epoch lets new leases through.
    expect((await tpm2(['pcrreset', '16'], env().tpm.tcti)).code).toBe(0);
    const recovered = await env().d.waitFor((s) => s.state === State.TRUSTED, 5000);
    expect(recovered.epoch).toBeGreaterThan(untrusted.epoch);
    const again = (await client.call({ acquireLease: {} })).acquireLease!.lease!;
    expect(again.leaseId).not.toBe(lease.leaseId);
    client.close();
  });
});
