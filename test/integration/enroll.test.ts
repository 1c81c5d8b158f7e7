/**
 * Enrollment by credential activation, end to end with the programs an operator runs: a
 * manufactured software TPM with EK certificates from a local CA, the daemon on it, and
 * `attestctl enroll challenge` (enrolling party), `respond` (host), `complete` (enrolling
 * party). The AK certificate it issues verifies with openssl and with the daemon's own
 * checker, naming the AK and the EK certificate. Refused: a challenge for another TPM's EK, for
 * another AK, an altered challenge, a replayed or mismatched response, a wrong proof.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAkCertificate, certificatesOf } from '../../daemon/verify/ak-certificate.js';
import { parseTpmtPublic } from '../../daemon/verify/tpm-public.js';
import { decode, payloads } from '../helpers/audit-log.js';
import { ATTESTCTL, runToEnd, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { startManufacturedSwtpm, run, type ManufacturedSwtpm } from '../helpers/swtpm.js';
import { eccTpmtPublic } from '../unit/verify-helpers.js';

describe('enrollment by credential activation', () => {
  const work = mkdtempSync(join(tmpdir(), 'attestd-enroll-'));
  const f = (n: string) => join(work, n);
  let tpm: ManufacturedSwtpm;
  let other: ManufacturedSwtpm;
  let d: RunningDaemon;
  const ctl = (...args: string[]) => runToEnd(process.execPath, [ATTESTCTL, '--socket', d.socket, ...args], {}, 30_000);

  beforeAll(async () => {
    tpm = await startManufacturedSwtpm({ ekCerts: true });
    other = await startManufacturedSwtpm({ ekCerts: true });
    d = await startDaemon({ tcti: tpm.tcti, stateDir: f('state') });
    // What the operator hands the enrolling party: the EK certificate (here from the session's
    // record of it) and the AK's public area from the state folder.
    const start = (await payloads(join(d.stateDir, 'audit'))).map(decode).find((r) => r.sessionStart)!.sessionStart!;
    writeFileSync(f('ek.der'), start.ekCertificates![0]!);
    writeFileSync(f('ak.pub'), readFileSync(join(d.stateDir, 'ak.pub')));
    for (const [dir, t] of [['vendor', tpm], ['other-vendor', other]] as const) {
      mkdirSync(f(dir));
      writeFileSync(join(f(dir), 'issuer.pem'), t.localCa!.issuerPem);
      writeFileSync(join(f(dir), 'root.pem'), t.localCa!.rootPem);
    }
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('ca.key'),
      '-out', f('ca.pem'), '-days', '30', '-subj', '/CN=attestd test enrolling CA', '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  }, 60_000);

  afterAll(async () => {
    await d?.stop();
    await tpm?.dispose();
    await other?.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  const challenge = (name: string, ek = f('ek.der'), ak = f('ak.pub'), vendor = f('vendor')) =>
    ctl('enroll', 'challenge', '--ek-cert', ek, '--ak', ak, '--ek-ca', vendor, '--output', f(`${name}.challenge`), '--state', f(`${name}.state`));
  const respond = (name: string) => ctl('enroll', 'respond', f(`${name}.challenge`), '--output', f(`${name}.response`));
  const complete = (response: string, state: string, out: string) =>
    ctl('enroll', 'complete', f(`${response}.response`), '--state', f(`${state}.state`), '--ca-cert', f('ca.pem'), '--ca-key', f('ca.key'), '--output', f(out));

  it('issues an AK certificate that names the AK and the EK certificate, and that openssl verifies', async () => {
    expect((await challenge('a')).code).toBe(0);
    expect(readFileSync(f('a.state')).length).toBeGreaterThan(0);
    const r = await respond('a');
    expect(r.code, r.stderr).toBe(0);
    const done = await complete('a', 'a', 'ak.crt');
    expect(done.code, done.stderr).toBe(0);

    const ossl = await runToEnd('openssl', ['verify', '-CAfile', f('ca.pem'), f('ak.crt')]);
    expect(ossl.stdout).toContain(': OK');
    const ak = parseTpmtPublic(readFileSync(f('ak.pub')));
    const v = verifyAkCertificate(readFileSync(f('ak.crt'), 'utf8'), certificatesOf(readFileSync(f('ca.pem'), 'utf8')), [], ak, new Date());
    expect(v.ekCertificateSha256).toEqual(createHash('sha256').update(readFileSync(f('ek.der'))).digest());
    // Not a certificate for another key.
    const stranger = parseTpmtPublic(eccTpmtPublic(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey));
    expect(() => verifyAkCertificate(readFileSync(f('ak.crt'), 'utf8'), certificatesOf(readFileSync(f('ca.pem'), 'utf8')), [], stranger, new Date()))
      .toThrow(expect.objectContaining({ code: 'AK_CERT_INVALID' }));
  });

  it('uses a state once: the same response again, or a response to another challenge, is refused', async () => {
    const again = await complete('a', 'a', 'again.crt');
    expect(again.code).toBe(9);
    expect(again.stderr).toMatch(/completed already/);
    expect((await challenge('b')).code).toBe(0);
    expect((await respond('b')).code).toBe(0);
    const crossed = await complete('b', 'a', 'crossed.crt');
    expect(crossed.code).toBe(9);
    expect(crossed.stderr).toMatch(/another challenge/);
  });

  it('refuses a wrong proof', async () => {
    expect((await challenge('c')).code).toBe(0);
    expect((await respond('c')).code).toBe(0);
    const resp = JSON.parse(readFileSync(f('c.response'), 'utf8')) as { proof: string };
    resp.proof = (resp.proof[0] === '0' ? '1' : '0') + resp.proof.slice(1);
    writeFileSync(f('c.response'), JSON.stringify({ ...resp, attestd_enroll: 'response/v1' }));
    const r = await complete('c', 'c', 'c.crt');
    expect(r.code).toBe(9);
    expect(r.stderr).toMatch(/proof does not match/);
  });

  it('is refused by the TPM for an altered challenge', async () => {
    expect((await challenge('e')).code).toBe(0);
    const c = JSON.parse(readFileSync(f('e.challenge'), 'utf8')) as { credential_blob: string };
    const blob = Buffer.from(c.credential_blob, 'base64');
    blob[blob.length - 1] = (blob[blob.length - 1] ?? 0) ^ 1;
    writeFileSync(f('e.challenge'), JSON.stringify({ ...c, credential_blob: blob.toString('base64') }));
    const r = await respond('e');
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/TPM_COMMAND_FAILED|Esys_ActivateCredential/);
  });

  it('is refused for another AK than the daemon\'s, before the TPM is asked', async () => {
    writeFileSync(f('stranger.pub'), eccTpmtPublic(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey));
    expect((await challenge('s', f('ek.der'), f('stranger.pub'))).code).toBe(0);
    const r = await respond('s');
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/ENROLL_INVALID/);
  });

  it('is refused by the TPM for another TPM\'s EK, and an EK that does not chain is refused at once', async () => {
    const otherEk = await readEkCert(other);
    writeFileSync(f('other-ek.der'), otherEk);
    const bad = await challenge('x', f('other-ek.der'), f('ak.pub'), f('vendor'));
    expect(bad.code).toBe(9);
    expect(bad.stderr).toMatch(/EK_CERT_INVALID/);
    expect((await challenge('o', f('other-ek.der'), f('ak.pub'), f('other-vendor'))).code).toBe(0);
    const r = await respond('o');
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/TPM_COMMAND_FAILED|Esys_ActivateCredential/);
  });
  it('is installed, recorded by the daemon, and lets an auditor verify the log with the enrolling CA alone', async () => {
    const notAk = await ctl('enroll', 'install', f('ca.pem'), '--dir', d.stateDir);
    expect(notAk.code).toBe(9);
    expect(notAk.stderr).toMatch(/AK_CERT_INVALID/);
    const inst = await ctl('enroll', 'install', f('ak.crt'), '--dir', d.stateDir);
    expect(inst.code, inst.stderr).toBe(0);
    expect(readFileSync(join(d.stateDir, 'ak.crt')).length, inst.stdout).toBeGreaterThan(0);
    await d.stop();
    d = await startDaemon({ tcti: tpm.tcti, stateDir: d.stateDir });
    await d.waitFor((st) => st.epoch >= 2, 15_000);
    expect(d.output()).toContain('AK certificate recorded');
    await d.stop();
    const sessions = (await payloads(join(d.stateDir, 'audit'))).map(decode).filter((r) => r.sessionStart);
    expect(sessions.at(-1)!.sessionStart!.akCertificate!.length).toBeGreaterThan(0);

    // The first session predates the certificate: it vouches for the same key there too.
    const ok = await runToEnd(process.execPath, [ATTESTCTL, 'audit', 'verify', join(d.stateDir, 'audit'), '--ca', f('ca.pem'), '--json'], {}, 60_000);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('ca2.key'),
      '-out', f('ca2.pem'), '-days', '30', '-subj', '/CN=attestd test enrolling CA', '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    const other = await runToEnd(process.execPath, [ATTESTCTL, 'audit', 'verify', join(d.stateDir, 'audit'), '--ca', f('ca2.pem'), '--json'], {}, 60_000);
    expect(other.code).toBe(8);
    expect(JSON.parse(other.stdout).check).toBe('ak-certificate');
  }, 90_000);
});

/** The RSA EK certificate of a manufactured swtpm that no daemon holds, trimmed of NV padding. */
async function readEkCert(t: ManufacturedSwtpm): Promise<Buffer> {
  const { TpmSource } = await import('../../daemon/evidence/tpm/source.js');
  const s = new TpmSource(t.tcti);
  try {
    return (await s.ekCertificates()).rsa!;
  } finally {
    await s.close();
  }
}
