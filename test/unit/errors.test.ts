import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES, AttestdError, asAttestdError } from '../../daemon/base/errors.js';

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'gen' ? [] : sources(p);
    return /\.(ts|cc|h)$/.test(e.name) ? [p] : [];
  });
}

describe('error codes', () => {
  const codes = Object.keys(ERROR_CODES);
  const doc = readFileSync('docs/errors.md', 'utf8');
  const documented = [...doc.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]);

  it('docs/errors.md lists exactly the codes of daemon/base/errors.ts, in the same order', () => {
    expect(documented).toEqual(codes);
  });

  it('every code the native core throws is a known code', () => {
    const native = sources('native').map((f) => readFileSync(f, 'utf8')).join('\n');
    const thrown = [...native.matchAll(/"([A-Z][A-Z0-9_]{3,})"/g)].map((m) => m[1]!).filter((c) => /^(NATIVE_|INVALID_ARGUMENT|CVM_)/.test(c));
    expect(thrown.length).toBeGreaterThan(0);
    for (const c of thrown) expect(codes).toContain(c);
  });

  it('every code thrown in TypeScript is a known code', () => {
    const ts = sources('daemon').map((f) => readFileSync(f, 'utf8')).join('\n');
    const used = [...ts.matchAll(/new AttestdError\('([A-Z0-9_]+)'/g)].map((m) => m[1]!);
    expect(used.length).toBeGreaterThan(10);
    for (const c of used) expect(codes).toContain(c);
  });

  it('wraps foreign errors as INTERNAL and keeps coded ones', () => {
    expect(asAttestdError(new Error('x')).code).toBe('INTERNAL');
    const coded = Object.assign(new Error('y'), { code: 'TPM_UNAVAILABLE' });
    expect(asAttestdError(coded).code).toBe('TPM_UNAVAILABLE');
    const own = new AttestdError('LEASE_EXPIRED');
    expect(asAttestdError(own)).toBe(own);
    expect(own.message).toBe(ERROR_CODES.LEASE_EXPIRED);
  });
});
