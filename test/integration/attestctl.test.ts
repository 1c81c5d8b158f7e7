/** attestctl against a live daemon: each command, its JSON output and its exit code. */
import { describe, it, expect } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tpm2 } from '../helpers/swtpm.js';
import { attestctl, sharedDaemon, testPolicy } from '../helpers/daemon.js';
import { framesOf, readSegments } from '../../daemon/audit/reader.js';
import { attestd } from '../../daemon/gen/proto.js';

// Leases outlive the few seconds a busy machine may take between two attestctl runs.
const env = sharedDaemon(testPolicy({ maxAge: '60s' }));

const tokenArgs = (l: { token: { token: string; signature: string } }) => [l.token.token, l.token.signature];

describe('attestctl', () => {
  it('status --json shows the state, epoch and attestation key; exit 0 when trusted', async () => {
    const r = await attestctl(['status', '--json'], env().d.socket);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.state).toBe('TRUSTED');
    expect(s.epoch).toBeGreaterThan(0);
    expect(s.ak_public_pem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(s.session_public_key).toMatch(/^[0-9a-f]{64}$/);
  });

  it('takes the socket from ATTESTD_SOCKET and exits 3 when nothing listens', async () => {
    const r = await attestctl(['status'], join(env().d.dir, 'nothing.sock'));
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('cannot connect');
  });

  it('lease acquire --json, then lease verify: valid and live while its holder runs; a changed token exits 6', async () => {
    const a = await attestctl(['lease', 'acquire', '--json'], env().d.socket);
    expect(a.code).toBe(0);
    expect(JSON.parse(a.stdout).rule).toBe('tests');
    // That lease ended with attestctl; a lease lives only as long as its holder (this process here).
    const before = JSON.parse((await attestctl(['lease', 'verify', ...tokenArgs(JSON.parse(a.stdout)), '--json'], env().d.socket)).stdout);
    expect(before.signature_valid).toBe(true);
    const client = await env().d.client();
    const held = (await client.call({ acquireLease: {} })).acquireLease!.lease!;
    const lease = { lease_id: held.leaseId, token: { token: Buffer.from(held.token!.token!).toString('base64'), signature: Buffer.from(held.token!.signature!).toString('base64') } };
    const v = await attestctl(['lease', 'verify', lease.token.token, lease.token.signature, '--json'], env().d.socket);
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ signature_valid: true, live: true, lease_id: lease.lease_id });
    await client.call({ releaseLease: { leaseId: held.leaseId } });
    client.close();
    const tok = Buffer.from(lease.token.token, 'base64');
    tok[5] = tok[5]! ^ 1;
    const bad = await attestctl(['lease', 'verify', tok.toString('base64'), lease.token.signature, '--json'], env().d.socket);
    expect(bad.code).toBe(6);
    expect(JSON.parse(bad.stdout).signature_valid).toBe(false);
  });

  it('lease renew from another process is refused with the stable code, exit 4', async () => {
    // Held by this process; renewed from attestctl, another process.
    const client = await env().d.client();
    const a = { lease_id: (await client.call({ acquireLease: {} })).acquireLease!.lease!.leaseId ?? '' };
    const r = await attestctl(['lease', 'renew', a.lease_id, '--json'], env().d.socket);
    expect(r.code).toBe(4);
    expect(JSON.parse(r.stdout).error).toBe('IDENTITY_MISMATCH');
    const rel = await attestctl(['lease', 'release', a.lease_id], env().d.socket); // same uid may release
    expect(rel.code).toBe(0);
    client.close();
  });

  it('run gives the child its lease id and passes its exit code through', async () => {
    const r = await attestctl(['run', '--', 'sh', '-c', 'test -n "$ATTESTD_LEASE_ID" && exit 7'], env().d.socket);
    expect(r.code, r.stderr).toBe(7);
  });

  it('policy check: valid exits 0; invalid exits 5 with file:line:column: field', async () => {
    const good = join(env().d.dir, 'good.yaml');
    writeFileSync(good, testPolicy());
    expect((await attestctl(['policy', 'check', good])).code).toBe(0);
    const bad = join(env().d.dir, 'bad.yaml');
    writeFileSync(bad, testPolicy({ ttl: '30 parsecs' }));
    const r = await attestctl(['policy', 'check', bad, '--json']);
    expect(r.code).toBe(5);
    const out = JSON.parse(r.stdout);
    expect(out.valid).toBe(false);
    expect(out.problems[0]).toMatchObject({ file: bad, path: 'rules[0].lease.ttl' });
    expect(out.problems[0].line).toBeGreaterThan(10);
    const text = await attestctl(['policy', 'check', bad]);
    expect(text.stderr).toMatch(/bad\.yaml:\d+:\d+: rules\[0\]\.lease\.ttl: /);
  });

  it('usage errors exit 2 with help', async () => {
    const r = await attestctl(['frobnicate'], env().d.socket);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage: attestctl');
    expect((await attestctl(['run'], env().d.socket)).code).toBe(2);
  });

  it('tpm2_checkquote accepts the quote the daemon recorded, with the AK that status shows', async () => {
    const s = JSON.parse((await attestctl(['status', '--json'], env().d.socket)).stdout);
    let result: attestd.audit.v1.EpochResult | undefined;
    for await (const seg of readSegments(join(env().d.stateDir, 'audit'))) {
      for (const f of framesOf(seg)) {
        if (!('payload' in f)) continue;
        const rec = attestd.audit.v1.AuditRecord.decode(f.payload);
        if (rec.epoch) {
          const r = attestd.audit.v1.EpochResult.decode(rec.epoch.result!);
          if (r.pass) result = r;
        }
      }
    }
    expect(result?.tpm).toBeTruthy();
    const ak = join(env().d.dir, 'ak.pem');
    const msg = join(env().d.dir, 'attest.bin');
    const sig = join(env().d.dir, 'sig.bin');
    writeFileSync(ak, s.ak_public_pem);
    writeFileSync(msg, result!.tpm!.attest!);
    writeFileSync(sig, result!.tpm!.signature!);
    const ok = await tpm2(['checkquote', '-u', ak, '-m', msg, '-s', sig, '-g', 'sha256', '-q', Buffer.from(result!.binding).toString('hex')], env().tpm.tcti);
    expect(ok.code).toBe(0);
    const other = Buffer.from(result!.binding);
    other[0] = other[0]! ^ 1;
    const bad = await tpm2(['checkquote', '-u', ak, '-m', msg, '-s', sig, '-g', 'sha256', '-q', other.toString('hex')], env().tpm.tcti);
    expect(bad.code).not.toBe(0);
  });
});
