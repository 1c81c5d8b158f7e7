/**
 * attestctl enroll challenge|respond|complete: enrollment of a host's attestation key by
 * credential activation, file-based so that it works across an air gap (docs/enrollment.md).
 *
 *  challenge  (enrolling party, no TPM): checks the host's EK certificate against the TPM
 *             vendor CAs and the AK's public area, makes a credential only that TPM can
 *             activate for that AK, writes the challenge and keeps the state (0600).
 *  respond    (host, root): the daemon activates the credential; writes the proof.
 *  complete   (enrolling party): checks the proof against the state and issues the AK
 *             certificate with the enrolling CA's key. A state completes once.
 */
import { createHash, createPrivateKey, randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { asAttestdError, AttestdError } from '../base/errors.js';
import { AttestdClient, ConnectionError, RemoteError } from '../client/client.js';
import { issueAkCertificate } from '../enroll/ak-certificate.js';
import {
  decodeChallenge, decodeResponse, decodeState, encodeChallenge, encodeResponse, encodeState, enrollProof, proofMatches,
} from '../enroll/files.js';
import { AK_PIN_FILE } from '../attestation/ak-pin.js';
import { AK_CERT_FILE, certifiesAk } from '../verify/ak-certificate.js';
import { makeCredential } from '../verify/credential/make-credential.js';
import { verifyEkCertificate } from '../verify/ek-cert.js';
import { parseTpmtPublic, TPMA_OBJECT, type TpmPublicKey } from '../verify/tpm-public.js';
import { TPM_ALG } from '../verify/tpm-alg.js';
import { looksLikePem, pemCertificates } from '../verify/x509/pem.js';
import { EXIT } from './exit-codes.js';
import { printJson, reportError } from './output.js';

export const ENROLL_HELP = `Usage:
  attestctl enroll challenge --ek-cert EK.der --ak AK.pub --ek-ca DIR --output CHALLENGE --state STATE
  attestctl enroll respond CHALLENGE --output RESPONSE
  attestctl enroll complete RESPONSE --state STATE --ca-cert CA.pem --ca-key CA.key --output AK.crt [--days N]
  attestctl enroll install AK.crt [--dir STATE_DIR]

challenge runs where the enrolling CA is (no TPM, no daemon): EK.der is the host's EK
certificate (DER or PEM; RSA 2048 or ECC P-256, checked against the TPM vendor CAs in DIR),
AK.pub the attestation key's TPMT_PUBLIC (the host's /var/lib/attestd/ak.pub). It writes
CHALLENGE for the host and STATE (0600) to keep: it holds the secret.
respond runs on the host as root: the daemon has its TPM activate the credential, and only the
TPM with that EK, holding that AK, can. RESPONSE carries a proof of it, not the secret.
complete checks RESPONSE against STATE and writes the AK certificate (PEM), valid N days
(default 365), signed by CA.key; STATE is marked used.
install runs on the host as root: it checks that AK.crt certifies the AK pinned in STATE_DIR
(default /var/lib/attestd) and keeps it there as ak.crt; from the next start the daemon records
it in every session start, and auditors can verify the log with the enrolling CA
(attestctl audit verify --ca).
Exit codes: 0 done, 1 failure, 2 usage, 3 daemon unreachable, 4 refused by the daemon,
9 the challenge, response or certificate does not verify or match.`;

export interface EnrollOptions {
  json: boolean;
  socket: string;
  ekCert?: string | undefined;
  ak?: string | undefined;
  ekCa?: string | undefined;
  output?: string | undefined;
  state?: string | undefined;
  caCert?: string | undefined;
  caKey?: string | undefined;
  days?: string | undefined;
  dir?: string | undefined;
}

/** A challenge or response older than this is refused by complete. */
const STATE_LIFETIME_MS = 24 * 3600_000;

function need(o: EnrollOptions, keys: (keyof EnrollOptions)[]): string | undefined {
  const missing = keys.filter((k) => o[k] === undefined);
  return missing.length > 0 ? `missing ${missing.map((k) => `--${String(k).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}` : undefined;
}

const derOf = (bytes: Buffer): Buffer => (looksLikePem(bytes) ? pemCertificates(bytes, 'EK_CERT_INVALID', { max: 1 })[0] ?? bytes : bytes);

/** The EK as its standard template has it (TCG L-1, L-2): the certificate's key, SHA-256, AES-128-CFB. */
function ekFromCertificate(key: TpmPublicKey['key']): { ek: TpmPublicKey; kind: 'rsa' | 'ecc' } {
  const kind = key.asymmetricKeyType === 'rsa' ? 'rsa' : key.asymmetricKeyType === 'ec' ? 'ecc' : undefined;
  if (!kind) throw new AttestdError('ENROLL_INVALID', `the EK is a ${String(key.asymmetricKeyType)} key; RSA 2048 or ECC P-256 is needed`);
  if (kind === 'ecc' && key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new AttestdError('ENROLL_INVALID', 'an ECC EK must be on P-256');
  if (kind === 'rsa' && key.asymmetricKeyDetails?.modulusLength !== 2048) throw new AttestdError('ENROLL_INVALID', 'an RSA EK must be 2048 bits');
  const attributes = TPMA_OBJECT.FIXED_TPM | TPMA_OBJECT.FIXED_PARENT | TPMA_OBJECT.SENSITIVE_DATA_ORIGIN | TPMA_OBJECT.ADMIN_WITH_POLICY |
    TPMA_OBJECT.RESTRICTED | TPMA_OBJECT.DECRYPT;
  const ek: TpmPublicKey = {
    type: kind, nameAlg: 'sha256', objectAttributes: attributes, restricted: true, sign: false, key,
    name: Buffer.alloc(0), publicArea: Buffer.alloc(0), symmetric: { alg: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB },
  };
  if (kind === 'ecc') ek.curve = 'P-256';
  return { ek, kind };
}

/** An AK attestd would make: a restricted signing key, fixed to its TPM, generated inside it. */
function checkAk(ak: TpmPublicKey): void {
  const want = TPMA_OBJECT.FIXED_TPM | TPMA_OBJECT.FIXED_PARENT | TPMA_OBJECT.SENSITIVE_DATA_ORIGIN | TPMA_OBJECT.RESTRICTED | TPMA_OBJECT.SIGN_ENCRYPT;
  if ((ak.objectAttributes & want) !== want || (ak.objectAttributes & TPMA_OBJECT.DECRYPT) !== 0) {
    throw new AttestdError('ENROLL_INVALID', 'the AK is not a restricted signing key fixed to its TPM and generated in it');
  }
}

async function challenge(o: EnrollOptions): Promise<number> {
  const ekDer = derOf(await readFile(o.ekCert!));
  const bundle = await Promise.all((await readdir(o.ekCa!)).map((n) => readFile(join(o.ekCa!, n))));
  const verified = verifyEkCertificate(ekDer, bundle, new Date());
  const { ek, kind } = ekFromCertificate(verified.publicKey);
  const akPublic = await readFile(o.ak!);
  const ak = parseTpmtPublic(akPublic);
  checkAk(ak);
  const id = randomBytes(16);
  const credential = randomBytes(32);
  const made = makeCredential(ek, ak.name, credential);
  await writeFile(o.state!, encodeState({ id, ekKind: kind, ekCertificate: ekDer, akPublic, credential, createdMs: Date.now() }), { mode: 0o600 });
  await writeFile(o.output!, encodeChallenge({
    id, ekKind: kind, ekCertificateSha256: createHash('sha256').update(ekDer).digest(), akName: ak.name,
    credentialBlob: made.credentialBlob, secret: made.secret,
  }));
  if (o.json) printJson({ challenge: o.output, state: o.state, id: id.toString('hex'), ek_chain: verified.chain, ak_name: ak.name.toString('hex') });
  else process.stdout.write(`challenge ${id.toString('hex')} for EK "${verified.subject || verified.chain[0]}" (${verified.chain.join(' -> ')}), AK ${ak.name.toString('hex')}\n`);
  return EXIT.OK;
}

async function respond(file: string, o: EnrollOptions): Promise<number> {
  const c = decodeChallenge(await readFile(file));
  const client = await AttestdClient.connect(o.socket);
  let credential: Uint8Array;
  try {
    const res = await client.call({ activateCredential: { ekKind: c.ekKind, akName: c.akName, credentialBlob: c.credentialBlob, secret: c.secret } });
    credential = res.activateCredential?.credential ?? new Uint8Array();
  } finally {
    client.close();
  }
  await writeFile(o.output!, encodeResponse({ id: c.id, akName: c.akName, proof: enrollProof(credential, c.id, c.akName) }));
  if (o.json) printJson({ response: o.output, id: c.id.toString('hex') });
  else process.stdout.write(`response ${c.id.toString('hex')} written to ${o.output!}\n`);
  return EXIT.OK;
}

async function complete(file: string, o: EnrollOptions): Promise<number> {
  const days = o.days === undefined ? 365 : Number(o.days);
  if (!Number.isInteger(days) || days < 1 || days > 3650) {
    process.stderr.write('attestctl: --days takes 1 to 3650\n');
    return EXIT.USAGE;
  }
  const r = decodeResponse(await readFile(file));
  const state = decodeState(await readFile(o.state!));
  const ak = parseTpmtPublic(state.akPublic);
  if (!r.id.equals(state.id)) throw new AttestdError('ENROLL_INVALID', 'the response answers another challenge than this state');
  if (state.completedMs !== undefined) throw new AttestdError('ENROLL_INVALID', 'this challenge was completed already: a response is used once');
  if (Date.now() - state.createdMs > STATE_LIFETIME_MS) throw new AttestdError('ENROLL_INVALID', 'the challenge is older than a day; make a new one');
  if (!r.akName.equals(ak.name)) throw new AttestdError('ENROLL_INVALID', 'the response names another AK than the challenge');
  if (!proofMatches(enrollProof(state.credential, state.id, ak.name), r.proof)) {
    throw new AttestdError('ENROLL_INVALID', 'the proof does not match: the TPM that answered did not activate this credential');
  }
  const caCertificate = derOf(await readFile(o.caCert!));
  const caKey = createPrivateKey(await readFile(o.caKey!));
  const now = Date.now();
  const der = issueAkCertificate({
    akKey: ak.key, akName: ak.name, ekCertificateSha256: createHash('sha256').update(state.ekCertificate).digest(), caCertificate, caKey,
    notBefore: new Date(now - 5 * 60_000), notAfter: new Date(now + days * 86_400_000),
  });
  await writeFile(o.state!, encodeState({ ...state, completedMs: now }), { mode: 0o600 });
  const pem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`;
  await writeFile(o.output!, pem);
  if (o.json) printJson({ certificate: o.output, id: state.id.toString('hex'), ak_name: ak.name.toString('hex') });
  else process.stdout.write(`AK certificate for ${ak.name.toString('hex')} written to ${o.output!}\n`);
  return EXIT.OK;
}

async function install(file: string, o: EnrollOptions): Promise<number> {
  const dir = o.dir ?? '/var/lib/attestd';
  const ak = parseTpmtPublic(await readFile(join(dir, AK_PIN_FILE)));
  const leaf = certifiesAk(await readFile(file), ak);
  await writeFile(join(dir, AK_CERT_FILE), leaf.der, { mode: 0o644 });
  if (o.json) printJson({ installed: join(dir, AK_CERT_FILE), ak_name: ak.name.toString('hex') });
  else process.stdout.write(`AK certificate installed as ${join(dir, AK_CERT_FILE)}; attestd records it from its next start\n`);
  return EXIT.OK;
}

export async function enroll(args: string[], o: EnrollOptions): Promise<number> {
  const [sub, file] = args;
  const usage = (why: string) => {
    process.stderr.write(`attestctl: ${why}\n\n${ENROLL_HELP}\n`);
    return EXIT.USAGE;
  };
  const missing = sub === 'challenge' ? need(o, ['ekCert', 'ak', 'ekCa', 'output', 'state'])
    : sub === 'respond' ? (file === undefined ? 'respond needs CHALLENGE' : need(o, ['output']))
      : sub === 'complete' ? (file === undefined ? 'complete needs RESPONSE' : need(o, ['state', 'caCert', 'caKey', 'output']))
        : sub === 'install' ? (file === undefined ? 'install needs AK.crt' : undefined)
          : `unknown enroll command: ${sub ?? '(none)'}`;
  if (missing !== undefined) return usage(missing);
  try {
    if (sub === 'challenge') return await challenge(o);
    if (sub === 'respond') return await respond(file!, o);
    if (sub === 'install') return await install(file!, o);
    return await complete(file!, o);
  } catch (err) {
    if (err instanceof RemoteError || err instanceof ConnectionError) return reportError(err, o.json);
    const e = asAttestdError(err);
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EACCES') {
      process.stderr.write(`attestctl: ${(err as Error).message}\n`);
      return EXIT.FAILURE;
    }
    if (e.code === 'ENROLL_INVALID' || e.code === 'EK_CERT_INVALID' || e.code === 'AK_CERT_INVALID' || e.code === 'QUOTE_MALFORMED' || e.code === 'QUOTE_UNSUPPORTED_ALGORITHM') {
      process.stderr.write(`attestctl: ${e.code}: ${e.message}\n`);
      return EXIT.ENROLL_FAILED;
    }
    process.stderr.write(`attestctl: ${e.code}: ${e.message}\n`);
    return EXIT.FAILURE;
  }
}

