/**
 * Policy checks on a verified TD report: what a relying party accepts, as opposed to what
 * Intel's signatures prove. Run them only on a quote that verify.ts has verified. Each check
 * is recorded; a failed check carries a reason code (CVM_BINDING_MISMATCH for report data).
 */
import { AttestdError } from '../../base/errors.js';
import type { CheckRecord } from '../check-runner.js';
import type { TdReportBody } from './quote.js';
import type { TcbStatus } from './json-fields.js';

export interface MaskedValue {
  /** Hex, 8 bytes. */
  value: string;
  /** Hex, 8 bytes: only bits set here are compared. */
  mask: string;
}

export interface TdxPolicy {
  /** TD_ATTRIBUTES bit 0 (DEBUG) must be clear unless this is true. */
  allowDebug?: boolean;
  /** Allowed MRTD values, hex. Unset: any. */
  mrTd?: readonly string[];
  /** Allowed values per RTMR (index 0..3), hex. Unset: any. */
  rtmrs?: Partial<Record<0 | 1 | 2 | 3, readonly string[]>>;
  /** Minimum TEE_TCB_SVN, hex, 16 bytes, compared component by component. */
  minTeeTcbSvn?: string;
  tdAttributes?: MaskedValue;
  xfam?: MaskedValue;
  /** Expected REPORTDATA: 64 bytes, or a shorter prefix followed by zero bytes. */
  reportData?: Uint8Array;
  /** Platform and QE TCB statuses accepted; default DEFAULT_ACCEPTED_TCB_STATUSES. */
  acceptedTcbStatuses?: readonly TcbStatus[];
}

/** Statuses meaning "Intel's latest TCB for this platform", possibly pending configuration. */
export const DEFAULT_ACCEPTED_TCB_STATUSES: readonly TcbStatus[] = [
  'UpToDate', 'SWHardeningNeeded', 'ConfigurationNeeded', 'ConfigurationAndSWHardeningNeeded',
];

const TD_ATTRIBUTES_DEBUG = 0x01;

export function tdxPolicyChecks(body: TdReportBody, policy: TdxPolicy, status: { tcb?: TcbStatus; qe?: TcbStatus } = {}): CheckRecord[] {
  const out: CheckRecord[] = [];
  const check = (name: string, failure: { code: string; detail: string } | undefined, ok: string): void => {
    out.push(failure ? { name, status: 'fail', ...failure } : { name, status: 'pass', detail: ok });
  };
  const debug = (body.tdAttributes[0]! & TD_ATTRIBUTES_DEBUG) !== 0;
  check('policy.debug', debug && !policy.allowDebug ? { code: 'TDX_DEBUG_ENABLED', detail: 'the TD runs in debug mode (TD_ATTRIBUTES.DEBUG)' } : undefined,
    debug ? 'debug TD allowed by policy' : 'debug off');
  if (policy.mrTd) check('policy.mrtd', allowed(body.mrTd, policy.mrTd, 'MRTD'), 'MRTD allowed');
  for (const i of [0, 1, 2, 3] as const) {
    const list = policy.rtmrs?.[i];
    if (list) check(`policy.rtmr${i}`, allowed(body.rtmrs[i], list, `RTMR${i}`), `RTMR${i} allowed`);
  }
  if (policy.minTeeTcbSvn !== undefined) {
    const min = hexBytes(policy.minTeeTcbSvn, 16, 'minTeeTcbSvn');
    const low = [...min].findIndex((m, i) => body.teeTcbSvn[i]! < m);
    check('policy.tee_tcb_svn', low >= 0 ? { code: 'TDX_TCB_SVN_TOO_LOW', detail: `TEE_TCB_SVN ${body.teeTcbSvn.toString('hex')} is below ${min.toString('hex')} at byte ${low}` } : undefined,
      'TEE_TCB_SVN meets the minimum');
  }
  if (policy.tdAttributes) check('policy.td_attributes', masked(body.tdAttributes, policy.tdAttributes, 'TD_ATTRIBUTES'), 'TD_ATTRIBUTES match');
  if (policy.xfam) check('policy.xfam', masked(body.xfam, policy.xfam, 'XFAM'), 'XFAM matches');
  if (policy.reportData !== undefined) {
    const want = Buffer.from(policy.reportData);
    if (want.length > 64) throw new AttestdError('INVALID_ARGUMENT', 'expected report data is longer than 64 bytes');
    const padded = Buffer.concat([want, Buffer.alloc(64 - want.length)]);
    check('policy.report_data', padded.equals(body.reportData) ? undefined : { code: 'CVM_BINDING_MISMATCH', detail: 'REPORTDATA is not the expected binding' },
      'REPORTDATA carries the expected binding');
  }
  const accepted = policy.acceptedTcbStatuses ?? DEFAULT_ACCEPTED_TCB_STATUSES;
  for (const [name, value] of [['policy.tcb_status', status.tcb], ['policy.qe_tcb_status', status.qe]] as const) {
    if (value === undefined) out.push({ name, status: 'skipped', detail: 'no verified TCB status' });
    else check(name, accepted.includes(value) ? undefined : { code: 'TDX_TCB_STATUS_NOT_ACCEPTED', detail: `TCB status ${value} is not accepted` }, value);
  }
  return out;
}

function allowed(value: Buffer, list: readonly string[], what: string): { code: string; detail: string } | undefined {
  const hex = value.toString('hex');
  if (list.some((v) => v.toLowerCase() === hex)) return undefined;
  return { code: `TDX_${what}_NOT_ALLOWED`, detail: `${what} ${hex} is not an allowed value` };
}

function masked(value: Buffer, want: MaskedValue, what: string): { code: string; detail: string } | undefined {
  const v = hexBytes(want.value, 8, `${what} value`);
  const m = hexBytes(want.mask, 8, `${what} mask`);
  for (let i = 0; i < 8; i++) {
    if ((value[i]! & m[i]!) !== (v[i]! & m[i]!)) return { code: `TDX_${what}_MISMATCH`, detail: `${what} ${value.toString('hex')} differs from ${want.value} under mask ${want.mask}` };
  }
  return undefined;
}

function hexBytes(s: string, n: number, what: string): Buffer {
  if (typeof s !== 'string' || s.length !== n * 2 || !/^[0-9a-fA-F]*$/.test(s)) throw new AttestdError('INVALID_ARGUMENT', `${what} must be ${n} bytes of hex`);
  return Buffer.from(s, 'hex');
}
