/** Typed field access for parsed collateral JSON; anything unexpected is TDX_COLLATERAL_INVALID. */
import { AttestdError } from '../../base/errors.js';

export function invalid(message: string): never {
  throw new AttestdError('TDX_COLLATERAL_INVALID', message);
}

export function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) invalid(`${what} is not an object`);
  return v as Record<string, unknown>;
}

export function arr(v: unknown, what: string, max = 256): unknown[] {
  if (!Array.isArray(v) || v.length > max) invalid(`${what} is not an array of at most ${max}`);
  return v;
}

export function str(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length > 4096) invalid(`${what} is not a string`);
  return v;
}

export function int(v: unknown, what: string, max = 0xffffffff): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) invalid(`${what} is not an integer in 0..${max}`);
  return v;
}

export function hex(v: unknown, what: string, bytes: number): Buffer {
  const s = str(v, what);
  if (s.length !== bytes * 2 || !/^[0-9a-fA-F]*$/.test(s)) invalid(`${what} is not ${bytes} bytes of hex`);
  return Buffer.from(s, 'hex');
}

export function date(v: unknown, what: string): Date {
  const s = str(v, what);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(s)) invalid(`${what} is not an ISO 8601 UTC time`);
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) invalid(`${what} is not a valid time`);
  return d;
}

export const TCB_STATUSES = [
  'UpToDate', 'SWHardeningNeeded', 'ConfigurationNeeded', 'ConfigurationAndSWHardeningNeeded',
  'OutOfDate', 'OutOfDateConfigurationNeeded', 'Revoked',
] as const;
export type TcbStatus = (typeof TCB_STATUSES)[number];

export function tcbStatus(v: unknown, what: string): TcbStatus {
  const s = str(v, what);
  if (!(TCB_STATUSES as readonly string[]).includes(s)) invalid(`${what} "${s}" is not a known TCB status`);
  return s as TcbStatus;
}
