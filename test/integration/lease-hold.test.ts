/**
 * `attestctl lease acquire --hold` keeps its lease by renewing it and prints every event of
 * the lease exactly once: the grant, then one RENEWED per renewal, then how it ended.
 */
import { describe, it, expect } from 'vitest';
import { sharedDaemon, spawnAttestctl, testPolicy } from '../helpers/daemon.js';
import { AttestdClient } from '../../daemon/client/client.js';

// As the dev policy has it: epochs every 2 s, each valid 6 s, leases of 30 s (so the epoch's
// validity caps every expiry).
const env = sharedDaemon(testPolicy({ interval: '2s', maxAge: '6s', ttl: '30s' }));

describe('attestctl lease acquire --hold', () => {
  it('prints each RENEWED event once, in JSON, and exits 0 when the lease is released', async () => {
    const child = spawnAttestctl(['lease', 'acquire', '--hold', '--json'], env().d.socket);
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // The grant is printed as an indented object; each event after it as one line of JSON.
    const lines = () => out.split('\n').filter((l) => l.startsWith('{"event"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const deadline = Date.now() + 20_000;
    // The grant, the watch's first view, then renewals once a second.
    while (lines().filter((l) => l.event === 'RENEWED').length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const leaseId = lines()[0]!.lease_id as string;
    const client = await AttestdClient.connect(env().d.socket);
    await client.call({ releaseLease: { leaseId } });
    client.close();
    expect(await exited).toBe(0);
    const events = lines().map((l) => l.event);
    const renewed = lines().filter((l) => l.event === 'RENEWED');
    expect(renewed.length).toBeGreaterThanOrEqual(3);
    // Each renewal moves the lease to a newer epoch and a later expiry: no line repeats another.
    const expiries = renewed.map((l) => l.expires_at_ms as number);
    expect(new Set(expiries).size).toBe(expiries.length);
    const epochs = renewed.map((l) => l.epoch as number);
    expect(epochs).toEqual([...epochs].sort((a, b) => a - b));
    expect(new Set(epochs).size).toBe(epochs.length);
    expect(events.at(-1)).toBe('RELEASED');
  }, 40_000);
});
