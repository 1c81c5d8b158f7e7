/**
 * Attestation results a stranger can check: an enrolled daemon on a manufactured software TPM
 * hands a lease holder an EAR in its evidence bundle over the relying party's nonce, and
 * `attestctl verify-result` checks it with only the enrolling CA and the TPM vendor CAs. Checks
 * that do not trust our code: python3-jwt (PyJWT) verifies the EAR's EdDSA signature, and
 * tpm2_checkquote the bundle's quote. Flipped bytes anywhere fail, naming the link.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttestdClient } from '../../daemon/client/client.js';
import { decodeBundle, encodeBundle, resultBinding } from '../../daemon/verify/ear/bundle.js';
import { parseTpmtPublic } from '../../daemon/verify/tpm-public.js';
import { decode, payloads } from '../helpers/audit-log.js';
import { ATTESTCTL, runToEnd, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { run, startManufacturedSwtpm, tpm2, type ManufacturedSwtpm } from '../helpers/swtpm.js';

describe('attestation results (EAR) checked off the host', () => {
  const work = mkdtempSync(join(tmpdir(), 'attestd-result-'));
  const f = (n: string) => join(work, n);
  let tpm: ManufacturedSwtpm;
  let d: RunningDaemon;
  let client: AttestdClient;
  let leaseId = '';
  const nonce = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  const ctl = (...args: string[]) => runToEnd(process.execPath, [ATTESTCTL, '--socket', d.socket, ...args], {}, 30_000);
  const verify = (file: string, ...extra: string[]) => runToEnd(process.execPath,
    [ATTESTCTL, 'verify-result', file, '--ca', f('ca.pem'), '--ek-ca', f('vendor'), '--json', ...extra], {}, 30_000);

  beforeAll(async () => {
    tpm = await startManufacturedSwtpm({ ekCerts: true });
    d = await startDaemon({ tcti: tpm.tcti, stateDir: f('state') });
    mkdirSync(f('vendor'));
    writeFileSync(join(f('vendor'), 'issuer.pem'), tpm.localCa!.issuerPem);
    writeFileSync(join(f('vendor'), 'root.pem'), tpm.localCa!.rootPem);
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('ca.key'),
      '-out', f('ca.pem'), '-days', '30', '-subj', '/CN=attestd test enrolling CA', '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    // Enrol, install the AK certificate, and restart so the daemon carries it.
    const start = (await payloads(join(d.stateDir, 'audit'))).map(decode).find((r) => r.sessionStart)!.sessionStart!;
    writeFileSync(f('ek.der'), start.ekCertificates![0]!);
    const steps = [
      ['enroll', 'challenge', '--ek-cert', f('ek.der'), '--ak', join(d.stateDir, 'ak.pub'), '--ek-ca', f('vendor'), '--output', f('c'), '--state', f('s')],
      ['enroll', 'respond', f('c'), '--output', f('r')],
      ['enroll', 'complete', f('r'), '--state', f('s'), '--ca-cert', f('ca.pem'), '--ca-key', f('ca.key'), '--output', f('ak.crt')],
      ['enroll', 'install', f('ak.crt'), '--dir', d.stateDir],
    ];
    for (const s of steps) {
      const r = await ctl(...s);
      expect(r.code, `${s.join(' ')}: ${r.stderr}`).toBe(0);
    }
    await d.stop();
    d = await startDaemon({ tcti: tpm.tcti, stateDir: f('state') });
    client = await d.client();
    leaseId = (await client.call({ acquireLease: {} })).acquireLease!.lease!.leaseId!;
    const bundle = (await client.call({ getLeaseResult: { leaseId, nonce } })).getLeaseResult!.bundle!;
    writeFileSync(f('result.json'), bundle);
  }, 90_000);

  afterAll(async () => {
    client?.close();
    await d?.stop();
    await tpm?.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  it('verifies off the host with the enrolling CA and the vendor CAs, for the nonce sent', async () => {
    const r = await verify(f('result.json'), '--nonce', nonce.toString('hex'));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { lease: { lease_id: string; rule: string; workload: { pid: number } }; submods: Record<string, string> };
    expect(out.lease.lease_id).toBe(leaseId);
    expect(out.lease.rule).toBe('tests');
    expect(out.lease.workload.pid).toBe(process.pid);
    expect(out.submods.tpm).toBe('affirming');
    const other = await verify(f('result.json'), '--nonce', 'ff'.repeat(16));
    expect(other.code).toBe(8);
    expect(JSON.parse(other.stdout).link).toBe('nonce');
  });

  it("has an EAR that PyJWT verifies with the session key, and a quote that tpm2_checkquote accepts", async () => {
    const b = decodeBundle(readFileSync(f('result.json'), 'utf8'));
    const py = `
import base64, json, sys, jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
key = Ed25519PublicKey.from_public_bytes(base64.b64decode(sys.argv[2]))
claims = jwt.decode(sys.argv[1], key=key, algorithms=["EdDSA"])
print(json.dumps({"profile": claims["eat_profile"], "nonce": claims["eat_nonce"], "lease": claims["attestd.lease"]["lease_id"]}))
`;
    const r = await runToEnd('/usr/bin/python3', ['-c', py, b.ear, b.sessionPublicKey.toString('base64')]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ profile: 'tag:github.com,2023:veraison/ear', nonce: nonce.toString('base64url'), lease: leaseId });
    const bad = b.ear.slice(0, -4) + (b.ear.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    expect((await runToEnd('/usr/bin/python3', ['-c', py, bad, b.sessionPublicKey.toString('base64')])).code).not.toBe(0);

    const ak = parseTpmtPublic(b.quote.akPublic);
    writeFileSync(f('ak.pem'), ak.key.export({ type: 'spki', format: 'pem' }));
    writeFileSync(f('attest.bin'), b.quote.attest);
    writeFileSync(f('sig.bin'), b.quote.signature);
    // The tools check the signature and the qualifying data; the PCR values are verify-result's.
    const check = await tpm2(['checkquote', '-u', f('ak.pem'), '-m', f('attest.bin'), '-s', f('sig.bin'),
      '-g', 'sha256', '-q', resultBinding(b.sessionPublicKey, b.nonce).toString('hex')], tpm.tcti);
    expect(check.code, check.stderr).toBe(0);
    const wrong = await tpm2(['checkquote', '-u', f('ak.pem'), '-m', f('attest.bin'), '-s', f('sig.bin'),
      '-g', 'sha256', '-q', resultBinding(b.sessionPublicKey, Buffer.alloc(16)).toString('hex')], tpm.tcti);
    expect(wrong.code).not.toBe(0);
  });

  it('fails, naming the link, when any part of the bundle is altered', async () => {
    const b = decodeBundle(readFileSync(f('result.json'), 'utf8'));
    const flip = (buf: Buffer, at = buf.length - 1) => {
      const c = Buffer.from(buf);
      c[at] = (c[at] ?? 0) ^ 1;
      return c;
    };
    const [h, p, s] = b.ear.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const cases: [string, typeof b, string][] = [
      ['ear payload', { ...b, ear: `${h}.${Buffer.from(JSON.stringify({ ...claims, iat: 1 })).toString('base64url')}.${s}` }, 'ear-signature'],
      ['ear signature', { ...b, ear: `${h}.${p}.${flip(Buffer.from(s, 'base64url')).toString('base64url')}` }, 'ear-signature'],
      ['session key', { ...b, sessionPublicKey: flip(b.sessionPublicKey) }, 'ear-signature'],
      ['nonce', { ...b, nonce: flip(b.nonce) }, 'nonce'],
      ['quote', { ...b, quote: { ...b.quote, attest: flip(b.quote.attest, 20) } }, 'quote'],
      ['quote signature', { ...b, quote: { ...b.quote, signature: flip(b.quote.signature, 10) } }, 'quote'],
      ['PCR value', { ...b, quote: { ...b.quote, banks: b.quote.banks.map((x) => ({ alg: x.alg, values: new Map([...x.values].map(([i, v]) => [i, i === 0 ? flip(v) : v])) })) } }, 'quote'],
      ['AK certificate', { ...b, akCertificate: flip(b.akCertificate!, b.akCertificate!.length - 10) }, 'ak-certificate'],
      ['no AK certificate', { ...b, akCertificate: undefined }, 'ak-certificate'],
      ['EK certificate', { ...b, ekCertificates: b.ekCertificates.map((c) => flip(c, c.length - 10)) }, 'ek-certificate'],
    ];
    for (const [name, changed, link] of cases) {
      writeFileSync(f('bad.json'), encodeBundle(changed));
      const r = await verify(f('bad.json'));
      expect(r.code, `${name}: ${r.stdout}`).toBe(8);
      expect(JSON.parse(r.stdout).link, name).toBe(link);
    }
    writeFileSync(f('garbage.json'), '{"attestd_result":"bundle/v1"}');
    expect(JSON.parse((await verify(f('garbage.json'))).stdout).link).toBe('bundle');
    const otherCa = await runToEnd(process.execPath, [ATTESTCTL, 'verify-result', f('result.json'), '--ca', join(f('vendor'), 'root.pem'), '--json']);
    expect(JSON.parse(otherCa.stdout).link).toBe('ak-certificate');
  });

  it('takes one quote per result and refuses results asked for faster than the rate allows', async () => {
    leaseId = (await client.call({ acquireLease: {} })).acquireLease!.lease!.leaseId!;
    const asks = await Promise.allSettled(Array.from({ length: 25 }, () => client.call({ getLeaseResult: { leaseId } })));
    const refused = asks.filter((a) => a.status === 'rejected').map((a) => (a as PromiseRejectedResult).reason as { code?: string });
    expect(asks.some((a) => a.status === 'fulfilled'), JSON.stringify(refused.map((e) => String(e)).slice(0, 3))).toBe(true);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((e) => e.code === 'RESULT_RATE_LIMITED')).toBe(true);
    await expect(client.call({ getLeaseResult: { leaseId: '0'.repeat(32) } })).rejects.toMatchObject({ code: 'LEASE_NOT_FOUND' });
  });
});
