import { describe, it, expect } from 'vitest';
import { createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import { AttestdError } from '../../daemon/base/errors.js';
import { appraiseTdxQuote, verifyTdxQuote } from '../../daemon/verify/tdx/verify.js';
import { firstProblem } from '../../daemon/verify/check-runner.js';
import { parseTdxQuote } from '../../daemon/verify/tdx/quote.js';
import { intelPemCertificates as pemCertificates, parseIntelCertificate as parseCertificate, parseIntelCrl as parseCrl } from '../../daemon/verify/tdx/intel-certificate.js';
import { checkNotRevoked, pckExtensions } from '../../daemon/verify/tdx/pck.js';
import { parseSignedJson } from '../../daemon/verify/tdx/signed-json.js';
import { matchTcbLevel, tdxTcbInfo } from '../../daemon/verify/tdx/tcb-info.js';
import { allCollateral, sampleBytes, tdxFixture, withByte } from './tdx-helpers.js';

const SPR = 'gotdxguest_quote_v4_SPR_E4.dat';
const at2023 = new Date('2023-06-20T00:00:00Z');
const statusOf = (a: ReturnType<typeof appraiseTdxQuote>): Record<string, string> =>
  Object.fromEntries(a.checks.map((c) => [c.name, c.status === 'fail' ? `fail:${c.code}` : c.status]));
const ALL_CHECKS = ['quote.parse', 'pck.chain', 'pck.extensions', 'qe.signature', 'qe.report_data', 'quote.signature', 'tcb_info.signature',
  'tcb_info.freshness', 'qe_identity.signature', 'qe_identity.freshness', 'crl.root', 'crl.pck', 'tcb_info.fmspc', 'tcb_info.tdx_module',
  'tcb_info.status', 'qe_identity.match'];

describe('TDX quote verification on the fixtures', () => {
  it('trustee_quote_v4_fmspc50806f verifies completely at 2023-06-20 (UpToDate)', () => {
    const v = verifyTdxQuote(tdxFixture('trustee_quote_v4_fmspc50806f.dat'), allCollateral(), { at: at2023 });
    expect(v.tcb.status).toBe('UpToDate');
    expect(v.qeTcbStatus).toBe('UpToDate');
    expect(v.pck.fmspc.toString('hex')).toBe('50806f000000');
    expect(v.checks.map((c) => c.name)).toEqual(ALL_CHECKS);
    expect(v.checks.every((c) => c.status === 'pass')).toBe(true);
  });

  it('SPR_E4 passes every check but the TCB level: its PCK SGX TCB is below every level of the 2023-06-18 TCB info', () => {
    const a = appraiseTdxQuote(tdxFixture(SPR), allCollateral(), { at: at2023 });
    const s = statusOf(a);
    for (const n of ALL_CHECKS.filter((x) => x !== 'tcb_info.status')) expect(s[n], n).toBe('pass');
    expect(s['tcb_info.status']).toBe('fail:TDX_COLLATERAL_INVALID');
    expect(() => verifyTdxQuote(tdxFixture(SPR), allCollateral(), { at: at2023 })).toThrow(/below every TCB level/);
  });

  it.each([
    ['trustee_quote_v4_fmspc00a06d08.dat', '2025-11-01T00:00:00Z', 'OutOfDate'],
    ['gotdxguest_quote_v5_tdx15.dat', '2026-02-03T00:00:00Z', 'UpToDate'],
  ])('%s verifies at %s only with acceptStaleCollateral (TCB signing cert expired 2025-05-21, CRLs from 2023)', (name, at, status) => {
    const files = allCollateral();
    const strict = appraiseTdxQuote(tdxFixture(name), files, { at: new Date(at) });
    expect(statusOf(strict)['tcb_info.freshness']).toBe('fail:COLLATERAL_STALE');
    expect(statusOf(strict)['crl.pck']).toBe('fail:COLLATERAL_STALE');
    const v = verifyTdxQuote(tdxFixture(name), files, { at: new Date(at), acceptStaleCollateral: true });
    expect(v.tcb.status).toBe(status);
    expect(v.tcb.moduleStatus).toBe('UpToDate');
    expect(v.checks.find((c) => c.name === 'tcb_info.freshness')?.detail).toMatch(/accepted as stale/);
  });

  it('the Azure TD quote verifies except the TCB level: no TCB info for FMSPC 00806f050000 exists here', () => {
    const a = appraiseTdxQuote(sampleBytes('azure'), allCollateral(), { at: new Date('2025-11-01T00:00:00Z'), acceptStaleCollateral: true });
    const s = statusOf(a);
    expect(s['quote.signature']).toBe('pass');
    expect(s['pck.chain']).toBe('pass');
    expect(s['qe_identity.match']).toBe('pass');
    expect(s['tcb_info.signature']).toBe('skipped');
    expect(s['tcb_info.status']).toBe('skipped');
    expect(() => verifyTdxQuote(sampleBytes('azure'), allCollateral(), { at: new Date('2025-11-01T00:00:00Z'), acceptStaleCollateral: true }))
      .toThrow(AttestdError);
  });

  it('rejects the SGX quote', () => {
    expect(() => verifyTdxQuote(tdxFixture('trustee_sgx_quote_v3_occlum.dat'), allCollateral(), { at: at2023 })).toThrow(/SGX quote/);
  });

  it('fails stale collateral with COLLATERAL_STALE unless accepted by name', () => {
    const late = new Date('2023-08-01T00:00:00Z');
    const a = appraiseTdxQuote(tdxFixture('trustee_quote_v4_fmspc50806f.dat'), allCollateral(), { at: late });
    expect(firstProblem(a.checks, false)?.code).toBe('COLLATERAL_STALE');
    expect(verifyTdxQuote(tdxFixture('trustee_quote_v4_fmspc50806f.dat'), allCollateral(), { at: late, acceptStaleCollateral: true }).tcb.status).toBe('UpToDate');
  });

  it('fails a PCK chain outside its validity with TDX_CERT_CHAIN_INVALID', () => {
    const a = appraiseTdxQuote(tdxFixture('trustee_quote_v4_fmspc50806f.dat'), [], { at: new Date('2031-01-01T00:00:00Z') });
    expect(statusOf(a)['pck.chain']).toBe('fail:TDX_CERT_CHAIN_INVALID');
  });

  it('skips, and verifyTdxQuote refuses, checks without collateral', () => {
    const a = appraiseTdxQuote(tdxFixture('trustee_quote_v4_fmspc50806f.dat'), [], { at: at2023 });
    expect(statusOf(a)['quote.signature']).toBe('pass');
    expect(statusOf(a)['crl.pck']).toBe('skipped');
    expect(() => verifyTdxQuote(tdxFixture('trustee_quote_v4_fmspc50806f.dat'), [], { at: at2023 })).toThrow(/TCB info|CRL/);
  });

  it('fails a TCB info whose signed bytes were altered', () => {
    const files = allCollateral().map((f) => f.name === 'gotdxguest_tcbinfo_fmspc50806f000000.json'
      ? { name: f.name, bytes: Buffer.from(Buffer.from(f.bytes).toString('utf8').replace('"pcesvn":11', '"pcesvn":10')) } : f);
    const a = appraiseTdxQuote(tdxFixture('trustee_quote_v4_fmspc50806f.dat'), files, { at: at2023 });
    expect(statusOf(a)['tcb_info.signature']).toBe('fail:TDX_COLLATERAL_INVALID');
  });
});

describe('upstream tamper recipes on SPR_E4 (go-tdx-guest TestNegativeVerification)', () => {
  it.each([
    [0x00, 3, 'CVM_REPORT_MALFORMED'],
    [0x278, 0x10, 'CVM_REPORT_MALFORMED'],
    [0x1343, 0x32, 'TDX_CERT_CHAIN_INVALID'],
    [0x1329, 0x32, 'TDX_CERT_CHAIN_INVALID'],
    [0xf5f, 0x32, 'TDX_CERT_CHAIN_INVALID'],
    [0xb77, 0x32, 'TDX_CERT_CHAIN_INVALID'],
    [0x1e, 0x32, 'TDX_SIGNATURE_INVALID'],
    [0x3c, 0x32, 'TDX_SIGNATURE_INVALID'],
  ])('byte 0x%s = 0x%s fails with %s', (offset, value, code) => {
    const a = appraiseTdxQuote(withByte(tdxFixture(SPR), offset, value), allCollateral(), { at: at2023 });
    expect(firstProblem(a.checks, false)?.code).toBe(code);
  });

  it('a flipped QE report byte fails the QE report signature', () => {
    const a = appraiseTdxQuote(withByte(tdxFixture(SPR), 636 + 134 + 300, 0x55), allCollateral(), { at: at2023 });
    expect(statusOf(a)['qe.signature']).toBe('fail:TDX_SIGNATURE_INVALID');
  });
});

describe('PCK extensions, CRLs and TCB levels', () => {
  const pck = () => parseCertificate(pemCertificates(parseTdxQuote(tdxFixture(SPR)).pckChainPem, 'TDX_CERT_CHAIN_INVALID')[0]!);

  it('reads FMSPC, PCE-ID, PCESVN and components from the PCK certificate', () => {
    const e = pckExtensions(pck());
    expect(e.fmspc.toString('hex')).toBe('50806f000000');
    expect(e.pceId.toString('hex')).toBe('0000');
    expect(e.pceSvn).toBe(11);
    expect(e.sgxTcbComponents.slice(0, 8)).toEqual([3, 3, 2, 2, 2, 1, 0, 2]);
    expect(e.cpuSvn).toHaveLength(16);
  });

  it('reports CERT_REVOKED for a certificate listed on its issuer CRL', () => {
    // A CRL built and signed here: the same issuer name as the PCK's, listing its serial.
    const leaf = pck();
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = (tag: number, ...parts: Buffer[]): Buffer => {
      const body = Buffer.concat(parts);
      const len = body.length < 128 ? Buffer.from([body.length]) : body.length < 256 ? Buffer.from([0x81, body.length]) : Buffer.from([0x82, body.length >> 8, body.length & 0xff]);
      return Buffer.concat([Buffer.from([tag]), len, body]);
    };
    const alg = der(0x30, Buffer.from('06082a8648ce3d040302', 'hex'));
    const time = der(0x17, Buffer.from('230601000000Z'));
    const serial = der(0x02, Buffer.from('00' + leaf.serialHex, 'hex'));
    const tbs = der(0x30, der(0x02, Buffer.from([1])), alg, leaf.issuer, time, der(0x17, Buffer.from('330601000000Z')), der(0x30, der(0x30, serial, time)));
    const sig = sign('sha256', tbs, createPrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' })));
    const crl = parseCrl(der(0x30, tbs, alg, der(0x03, Buffer.from([0]), sig)));
    const issuer = { ...leaf, subject: leaf.issuer, subjectCn: 'test issuer', publicKey };
    expect(() => checkNotRevoked(leaf, issuer, crl)).toThrow(expect.objectContaining({ code: 'CERT_REVOKED' }));
    const other = { ...leaf, serialHex: '01' };
    expect(() => checkNotRevoked(other, issuer, crl)).not.toThrow();
    expect(() => checkNotRevoked(leaf, { ...issuer, publicKey: pck().publicKey }, crl)).toThrow(expect.objectContaining({ code: 'TDX_COLLATERAL_INVALID' }));
  });

  it('matches TCB levels from the highest down, by PCESVN and TEE_TCB_SVN', () => {
    const info = tdxTcbInfo(parseSignedJson(tdxFixture('gotdxguest_tcbinfo_fmspc50806f000000.json'), 'tcbInfo'));
    const comps = [5, 5, 2, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0];
    const svn = (...b: number[]) => Buffer.concat([Buffer.from(b), Buffer.alloc(16 - b.length)]);
    expect(matchTcbLevel(info, comps, 11, svn(3, 0, 5))?.status).toBe('UpToDate');
    expect(matchTcbLevel(info, comps, 10, svn(3, 0, 5))?.status).toBe('OutOfDate');
    expect(matchTcbLevel(info, comps, 11, svn(3, 0, 4))).toBeUndefined();
    expect(matchTcbLevel(info, comps, 4, svn(3, 0, 5))).toBeUndefined();
  });
});
