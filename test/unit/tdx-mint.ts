// A synthetic Intel PKI and TDX quotes signed with keys made here, for the passing path the
// recorded fixtures cannot show (their report data is not this epoch's binding, and real
// quotes cannot be re-signed): a test root -> PCK Platform CA -> PCK certificate, a TCB
// signing certificate, both CRLs, and TCB info and QE identity re-signed by the test signer.
// What is not key material is taken from the recorded TDX 1.5 quote and its collateral
// (gotdxguest_quote_v5_tdx15.dat, FMSPC 90c06f000000; SOURCES.md): the TD report body, the
// QE report, the PCK certificate's SGX extension, the TCB levels and QE identity, so the
// minted quote is UpToDate under the real TCB info. Dates are moved to now .. 2040.
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { der, derInt, derOctets } from './snp-mint.js';
import { parseTdxQuote } from '../../daemon/verify/tdx/quote.js';
import { pckChain } from '../../daemon/verify/tdx/intel-certificate.js';
import { topLevelSpan } from '../../daemon/verify/tdx/signed-json.js';
import { tdxFixture } from './tdx-helpers.js';

const { tlv, seq, ctx, oid, time, name, bool } = der;
const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));
const SGX_EXT = '1.2.840.113741.1.13.1';
const SAMPLE = 'gotdxguest_quote_v5_tdx15.dat';
const NOT_BEFORE = new Date('2023-01-01T00:00:00Z');
const NOT_AFTER = new Date('2040-01-01T00:00:00Z');

const spkiOf = (k: KeyObject): Buffer => k.export({ type: 'spki', format: 'der' });
const p256 = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });

function ecdsaSigned(tbs: Buffer, key: KeyObject): Buffer {
  return seq(tbs, ECDSA_SHA256, tlv(0x03, Buffer.concat([Buffer.from([0]), sign('sha256', tbs, key)])));
}

function mintEcCert(o: { subject: string; issuer: string; spki: Buffer; signer: KeyObject; ca: boolean; serial: number; extensions?: Buffer[] }): Buffer {
  const exts = [...(o.extensions ?? [])];
  if (o.ca) {
    exts.push(seq(oid('2.5.29.19'), bool(true), derOctets(seq(bool(true)))));
    exts.push(seq(oid('2.5.29.15'), bool(true), derOctets(tlv(0x03, Buffer.from([0x01, 0x06])))));
  }
  const tbs = seq(ctx(0, derInt(2)), derInt(o.serial), ECDSA_SHA256, name(o.issuer), seq(time(NOT_BEFORE), time(NOT_AFTER)),
    name(o.subject), o.spki, ...(exts.length ? [ctx(3, seq(...exts))] : []));
  return ecdsaSigned(tbs, o.signer);
}

function mintEcCrl(issuer: string, signer: KeyObject, revoked: number[]): Buffer {
  const entries = revoked.map((s) => seq(derInt(s), time(NOT_BEFORE)));
  const tbs = seq(derInt(1), ECDSA_SHA256, name(issuer), time(new Date(Date.now() - 86_400_000)), time(NOT_AFTER),
    ...(entries.length ? [seq(...entries)] : []));
  return ecdsaSigned(tbs, signer);
}

/** PCS signed JSON: the body's exact text, dates moved, signed by the TCB signing key. */
function resign(file: string, key: 'tcbInfo' | 'enclaveIdentity', signer: KeyObject): Buffer {
  const text = tdxFixture(file).toString('utf8');
  const [start, end] = topLevelSpan(text, key)!;
  const body = text.slice(start, end)
    .replace(/"issueDate":"[^"]*"/, `"issueDate":"${new Date(Date.now() - 86_400_000).toISOString().slice(0, 19)}Z"`)
    .replace(/"nextUpdate":"[^"]*"/, '"nextUpdate":"2040-01-01T00:00:00Z"');
  const sig = sign('sha256', Buffer.from(body, 'utf8'), { key: signer, dsaEncoding: 'ieee-p1363' });
  return Buffer.from(`{"${key}":${body},"signature":"${sig.toString('hex')}"}`, 'utf8');
}

const pem = (d: Buffer): string => `-----BEGIN CERTIFICATE-----\n${d.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`;

export interface IntelPki {
  /** The test "Intel SGX Root CA" (DER): the root an operator would configure. */
  root: Buffer;
  /** Collateral files for cvm.collateral: TCB signing certificate, both CRLs, TCB info, QE identity. */
  collateral: { name: string; bytes: Buffer }[];
  /** A TDX quote over `reportData` (64 bytes); `mrTd` replaces the TD's MRTD. */
  quote(reportData: Buffer, mrTd?: Buffer): Buffer;
  /** The recorded sample's MRTD, which the minted quotes carry by default. */
  mrTd: Buffer;
}

/** Root -> PCK Platform CA -> PCK, a TCB signer, CRLs and re-signed collateral; quotes signed at request. */
export function mintIntelPki(): IntelPki {
  const sample = parseTdxQuote(tdxFixture(SAMPLE));
  const realPck = pckChain(sample.pckChainPem)[0]!;
  const [rootK, caK, pckK, tcbK, attK] = [p256(), p256(), p256(), p256(), p256()];
  const root = mintEcCert({ subject: 'Intel SGX Root CA', issuer: 'Intel SGX Root CA', spki: spkiOf(rootK.publicKey), signer: rootK.privateKey, ca: true, serial: 1 });
  const ca = mintEcCert({ subject: 'Intel SGX PCK Platform CA', issuer: 'Intel SGX Root CA', spki: spkiOf(caK.publicKey), signer: rootK.privateKey, ca: true, serial: 2 });
  const pck = mintEcCert({ subject: 'Intel SGX PCK Certificate', issuer: 'Intel SGX PCK Platform CA', spki: spkiOf(pckK.publicKey), signer: caK.privateKey, ca: false, serial: 3,
    extensions: [seq(oid(SGX_EXT), derOctets(realPck.extensions.get(SGX_EXT)!))] });
  const tcbSigner = mintEcCert({ subject: 'Intel SGX TCB Signing', issuer: 'Intel SGX Root CA', spki: spkiOf(tcbK.publicKey), signer: rootK.privateKey, ca: false, serial: 4 });
  const collateral = [
    { name: 'tcb-signing.pem', bytes: Buffer.from(pem(tcbSigner)) },
    { name: 'root.crl', bytes: mintEcCrl('Intel SGX Root CA', rootK.privateKey, [0x77]) },
    { name: 'pck.crl', bytes: mintEcCrl('Intel SGX PCK Platform CA', caK.privateKey, [0x77]) },
    { name: 'tcbinfo.json', bytes: resign('gotdxguest_tcbinfo_fmspc90c06f000000.json', 'tcbInfo', tcbK.privateKey) },
    { name: 'qe-identity.json', bytes: resign('gotdxguest_qe_identity_td_qe.json', 'enclaveIdentity', tcbK.privateKey) },
  ];
  const attRaw = (() => {
    const jwk = attK.publicKey.export({ format: 'jwk' });
    return Buffer.concat([Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  })();
  const qeReport = Buffer.from(sample.qeReport.raw);
  createHash('sha256').update(attRaw).update(sample.qeAuthData).digest().copy(qeReport, 320);
  qeReport.fill(0, 352, 384);
  const qeSig = sign('sha256', qeReport, { key: pckK.privateKey, dsaEncoding: 'ieee-p1363' });
  const chain = Buffer.from(pem(pck) + pem(ca) + pem(root), 'latin1');
  const u16 = (n: number) => { const b = Buffer.alloc(2); b.writeUInt16LE(n); return b; };
  const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
  const cert = Buffer.concat([qeReport, qeSig, u16(sample.qeAuthData.length), sample.qeAuthData, u16(5), u32(chain.length), chain]);
  const real = tdxFixture(SAMPLE);
  // Header (48), body descriptor (6, version 5), then the TD report 1.5 body (648).
  const bodyAt = 48 + 6;
  return {
    root,
    collateral,
    mrTd: Buffer.from(sample.body.mrTd),
    quote(reportData: Buffer, mrTd?: Buffer): Buffer {
      const signed = Buffer.from(real.subarray(0, bodyAt + 648));
      reportData.copy(signed, bodyAt + 520);
      if (mrTd) mrTd.copy(signed, bodyAt + 16 + 48 + 48 + 8 + 8 + 8);
      const sig = sign('sha256', signed, { key: attK.privateKey, dsaEncoding: 'ieee-p1363' });
      const sigData = Buffer.concat([sig, attRaw, u16(6), u32(cert.length), cert]);
      return Buffer.concat([signed, u32(sigData.length), sigData]);
    },
  };
}
