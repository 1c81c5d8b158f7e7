import { describe, it, expect } from 'vitest';
import { parseTdxQuote } from '../../daemon/verify/tdx/quote.js';
import { tdxPolicyChecks } from '../../daemon/verify/tdx/policy-checks.js';
import { tdxFixture } from './tdx-helpers.js';

const debugQuote = parseTdxQuote(tdxFixture('trustee_quote_v4_fmspc50806f.dat')).body;
const prodQuote = parseTdxQuote(tdxFixture('gotdxguest_quote_v4_SPR_E4.dat')).body;
const byName = (checks: ReturnType<typeof tdxPolicyChecks>): Record<string, string> =>
  Object.fromEntries(checks.map((c) => [c.name, c.status === 'fail' ? `fail:${c.code}` : c.status]));

describe('TDX policy checks', () => {
  it('refuses a debug TD unless allowed', () => {
    expect(byName(tdxPolicyChecks(debugQuote, {}))['policy.debug']).toBe('fail:TDX_DEBUG_ENABLED');
    expect(byName(tdxPolicyChecks(debugQuote, { allowDebug: true }))['policy.debug']).toBe('pass');
    expect(byName(tdxPolicyChecks(prodQuote, {}))['policy.debug']).toBe('pass');
  });

  it('checks MRTD and RTMRs against allowed values', () => {
    const mrtd = prodQuote.mrTd.toString('hex');
    const rtmr1 = prodQuote.rtmrs[1].toString('hex');
    expect(byName(tdxPolicyChecks(prodQuote, { mrTd: [mrtd.toUpperCase()], rtmrs: { 1: [rtmr1] } }))).toMatchObject({ 'policy.mrtd': 'pass', 'policy.rtmr1': 'pass' });
    expect(byName(tdxPolicyChecks(prodQuote, { mrTd: ['00'.repeat(48)], rtmrs: { 2: ['11'.repeat(48)] } })))
      .toMatchObject({ 'policy.mrtd': 'fail:TDX_MRTD_NOT_ALLOWED', 'policy.rtmr2': 'fail:TDX_RTMR2_NOT_ALLOWED' });
  });

  it('compares TEE_TCB_SVN component by component', () => {
    expect(byName(tdxPolicyChecks(prodQuote, { minTeeTcbSvn: '03000400000000000000000000000000' }))['policy.tee_tcb_svn']).toBe('pass');
    expect(byName(tdxPolicyChecks(prodQuote, { minTeeTcbSvn: '03000500000000000000000000000000' }))['policy.tee_tcb_svn']).toBe('fail:TDX_TCB_SVN_TOO_LOW');
  });

  it('checks TD attributes and XFAM under masks', () => {
    const td = debugQuote.tdAttributes.toString('hex');
    expect(byName(tdxPolicyChecks(debugQuote, { allowDebug: true, tdAttributes: { value: td, mask: 'ffffffffffffffff' } }))['policy.td_attributes']).toBe('pass');
    expect(byName(tdxPolicyChecks(debugQuote, { allowDebug: true, tdAttributes: { value: '0000000000000000', mask: '0000001000000000' } }))['policy.td_attributes'])
      .toBe('fail:TDX_TD_ATTRIBUTES_MISMATCH');
    expect(byName(tdxPolicyChecks(debugQuote, { allowDebug: true, xfam: { value: 'e742060000000000', mask: 'ffffffffffffffff' } }))['policy.xfam']).toBe('pass');
  });

  it('binds REPORTDATA: exact, prefix with zero padding, and mismatch', () => {
    const rd = debugQuote.reportData;
    expect(byName(tdxPolicyChecks(debugQuote, { allowDebug: true, reportData: rd }))['policy.report_data']).toBe('pass');
    const other = Buffer.from(rd);
    other[63]! ^= 1;
    expect(byName(tdxPolicyChecks(debugQuote, { allowDebug: true, reportData: other }))['policy.report_data']).toBe('fail:CVM_BINDING_MISMATCH');
    expect(byName(tdxPolicyChecks(debugQuote, { allowDebug: true, reportData: rd.subarray(0, 32) }))['policy.report_data']).toBe('fail:CVM_BINDING_MISMATCH');
  });

  it('accepts only the listed TCB statuses', () => {
    expect(byName(tdxPolicyChecks(prodQuote, {}, { tcb: 'UpToDate', qe: 'UpToDate' }))).toMatchObject({ 'policy.tcb_status': 'pass', 'policy.qe_tcb_status': 'pass' });
    expect(byName(tdxPolicyChecks(prodQuote, {}, { tcb: 'OutOfDate' }))).toMatchObject({ 'policy.tcb_status': 'fail:TDX_TCB_STATUS_NOT_ACCEPTED', 'policy.qe_tcb_status': 'skipped' });
    expect(byName(tdxPolicyChecks(prodQuote, { acceptedTcbStatuses: ['OutOfDate'] }, { tcb: 'OutOfDate' }))['policy.tcb_status']).toBe('pass');
  });
});
