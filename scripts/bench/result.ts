/**
 * 13. Attestation results: making one (a fresh quote over the relying party's nonce, the EAR
 * signed, the bundle encoded) beside a bare in-process quote of the same PCRs on the same
 * swtpm; and verifying one off the host (attestctl verify-result's code) beside the raw
 * signature checks it makes (EdDSA over the JWT, ECDSA over the quote, the CA's ECDSA over
 * the AK certificate), with already-imported keys.
 */
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ResultMaker } from '../../daemon/attestation/result-maker.js';
import { issueAkCertificate } from '../../daemon/enroll/ak-certificate.js';
import { TpmSource } from '../../daemon/evidence/tpm/source.js';
import { parsePolicy } from '../../daemon/policy/parse.js';
import { certificatesOf } from '../../daemon/verify/ak-certificate.js';
import { decodeBundle } from '../../daemon/verify/ear/bundle.js';
import { parseCertificate } from '../../daemon/verify/x509/certificate.js';
import { verifyResult } from '../../daemon/verify/ear/verify-result.js';
import { parseTpmtPublic } from '../../daemon/verify/tpm-public.js';
import { tempDir } from './processes.js';
import type { Benchmark, Outcome } from './report.js';
import { msSince, nowNs, summarize } from './stats.js';
import { startSwtpm } from './swtpm.js';

const ROUNDS = 40;
const POLICY = parsePolicy(['version: 1', 'attestation: {interval: 2s, max_age: 6s}', 'pcrs:', '  sha256:',
  ...[0, 1, 2, 3, 4, 5, 6, 7, 16].map((i) => `    ${i}: "${'0'.repeat(64)}"`), 'rules:', '  - name: bench',
  '    match: {uids: [0]}', '    lease: {ttl: 30s, scopes: ["gpu:all"]}', ''].join('\n'), 'bench.yaml').policy;

/** A node:crypto Ed25519 key in the Signer shape (the daemon's is native). */
function nodeSigner(): { sign(d: Uint8Array): Buffer; publicKey(): Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
  return { sign: (d) => sign(null, d, privateKey), publicKey: () => raw };
}

async function makeSamples(tpm: TpmSource, maker: ResultMaker): Promise<{ make: number[]; quote: number[]; bundle: string }> {
  const lease = { lease: { leaseId: 'ab'.repeat(16), rule: 'bench', scopes: ['gpu:all'], gpus: [], expiresAtMs: Date.now() + 30_000 },
    holder: { pid: 1, uid: 0, gid: 0, startTime: 1n, exePath: '/usr/bin/node', exeSha256: randomBytes(32), cgroup: '/' }, epoch: 1 };
  const sels = await tpm.selections([{ alg: 'sha256', pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 16] }], false);
  let bundle = await maker.make(lease, randomBytes(16));
  await tpm.quote(randomBytes(32), sels);
  const make: number[] = [];
  const quote: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    let t = nowNs();
    bundle = await maker.make(lease, randomBytes(16));
    make.push(msSince(t));
    t = nowNs();
    await tpm.quote(randomBytes(32), sels);
    quote.push(msSince(t));
  }
  return { make, quote, bundle };
}

/** The raw checks verify-result makes, replayed with imported keys. */
function rawChecks(bundle: string, caKey: KeyObject, akCertDer: Buffer, sessionKey: KeyObject): () => void {
  const b = decodeBundle(bundle);
  const [h, p, s] = b.ear.split('.') as [string, string, string];
  const ak = parseTpmtPublic(b.quote.akPublic);
  const sigBytes = b.quote.signature;
  // TPMT_SIGNATURE for ECDSA: alg, hash, r (TPM2B), s (TPM2B).
  const rLen = sigBytes.readUInt16BE(4);
  const r = sigBytes.subarray(6, 6 + rLen);
  const sv = sigBytes.subarray(8 + rLen);
  const quoteSig = Buffer.concat([r, sv]);
  const cert = parseCertificate(akCertDer, 'AK_CERT_INVALID');
  return () => {
    const ok = verify(null, Buffer.from(`${h}.${p}`), sessionKey, Buffer.from(s, 'base64url'))
      && verify('sha256', b.quote.attest, { key: ak.key, dsaEncoding: 'ieee-p1363' }, quoteSig)
      && verify('sha256', cert.tbs, caKey, cert.signature);
    if (!ok) throw new Error('a raw check failed');
  };
}

async function run(): Promise<Outcome> {
  const sw = await startSwtpm();
  const dir = await tempDir('attestd-bench-result-');
  const tpm = new TpmSource(sw.tcti);
  try {
    const signer = nodeSigner();
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'ca.key'),
      '-out', join(dir, 'ca.pem'), '-days', '2', '-subj', '/CN=bench enrolling CA', '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign'], { stdio: 'ignore' });
    const caPem = readFileSync(join(dir, 'ca.pem'));
    const caKey = createPrivateKey(readFileSync(join(dir, 'ca.key')));
    const ca = certificatesOf(caPem);
    const ak = (await tpm.attestationKey())!;
    const akCert = issueAkCertificate({ akKey: ak.key, akName: ak.name, ekCertificateSha256: createHash('sha256').update('ek').digest(),
      caCertificate: ca[0]!.der, caKey, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000) });
    const maker = new ResultMaker({ tpm, signer, policy: () => POLICY, build: 'attestd bench', perSecond: 1e9,
      epoch: () => ({ epoch: 1, pass: true, reasons: [], appraisedAtMs: Date.now(), validUntilMs: Date.now() + 6000, policyDigest: Buffer.alloc(32) }),
      akCertificate: () => akCert, ekCertificates: () => [] });
    const { make, quote, bundle } = await makeSamples(tpm, maker);

    const b = decodeBundle(bundle);
    const sessionKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b.sessionPublicKey.toString('base64url') }, format: 'jwk' });
    const raw = rawChecks(bundle, ca[0]!.publicKey!, akCert, sessionKey);
    const verifySamples: number[] = [];
    const rawSamples: number[] = [];
    await verifyResult(bundle, { cas: ca, nonce: b.nonce, at: new Date() });
    for (let i = 0; i < ROUNDS * 5; i++) {
      let t = nowNs();
      await verifyResult(bundle, { cas: ca, nonce: b.nonce, at: new Date() });
      verifySamples.push(msSince(t));
      t = nowNs();
      raw();
      rawSamples.push(msSince(t));
    }
    const m = summarize(make);
    const q = summarize(quote);
    const v = summarize(verifySamples);
    const r = summarize(rawSamples);
    return {
      baseline: 'making: a bare in-process quote of the same PCRs on the same swtpm; verifying: the raw signature checks verify-result makes',
      figures: [
        { metric: 'result with a nonce, p50 (baseline: bare quote)', unit: 'ms', value: m.p50, baseline: q.p50, better: 'lower',
          target: { text: '<= 2x the quote', met: m.p50 <= 2 * q.p50 } },
        { metric: 'result with a nonce, p99 (baseline: bare quote)', unit: 'ms', value: m.p99, baseline: q.p99, better: 'lower' },
        { metric: 'verify-result p50 (baseline: raw signature checks)', unit: 'ms', value: v.p50, baseline: r.p50, better: 'lower',
          target: { text: '<= 10 ms', met: v.p50 <= 10 } },
        { metric: 'verify-result p99 (baseline: raw signature checks)', unit: 'ms', value: v.p99, baseline: r.p99, better: 'lower' },
      ],
      notes: [
        'a result = TPM quote (PCR_Read + Quote + PCR_Read) + EAR claims + Ed25519 signature + bundle JSON; rate limit lifted for the run',
        'verify-result = bundle decode + EdDSA JWT (jose) + quote + AK certificate chain (certificates parsed once and cached by digest)',
        `${ROUNDS} alternating rounds for making, ${ROUNDS * 5} for verifying`,
      ],
      details: { make: m, quote: q, verify: v, raw: r },
    };
  } finally {
    await tpm.close();
    await sw.stop();
  }
}

export const resultBench: Benchmark = { id: 'result', title: '13. Attestation results: making one over a nonce, and verifying it off the host', run };
