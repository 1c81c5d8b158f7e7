import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { formatTcti, MAX_TCTI_LENGTH, parseTcti } from '../../daemon/evidence/tpm/tcti.js';

function code(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (err) {
    return err instanceof AttestdError ? err.code : 'NOT_ATTESTD_ERROR';
  }
}

describe('parseTcti', () => {
  it.each([
    ['device', { name: 'device', conf: '/dev/tpmrm0' }],
    ['device:', { name: 'device', conf: '/dev/tpmrm0' }],
    ['device:/dev/tpm0', { name: 'device', conf: '/dev/tpm0' }],
    ['tabrmd', { name: 'tabrmd', conf: '' }],
    ['tabrmd:', { name: 'tabrmd', conf: '' }],
    ['tabrmd:bus_name=com.intel.tss2.Tabrmd', { name: 'tabrmd', conf: 'bus_name=com.intel.tss2.Tabrmd' }],
    ['tabrmd:bus_name=com.example.tpm,bus_type=session', { name: 'tabrmd', conf: 'bus_name=com.example.tpm,bus_type=session' }],
    ['swtpm:path=/run/swtpm/tpm.sock', { name: 'swtpm', conf: 'path=/run/swtpm/tpm.sock' }],
    ['swtpm:host=127.0.0.1,port=2321', { name: 'swtpm', conf: 'host=127.0.0.1,port=2321' }],
    ['swtpm:port=2321', { name: 'swtpm', conf: 'port=2321' }],
    ['mssim:host=localhost,port=2321', { name: 'mssim', conf: 'host=localhost,port=2321' }],
    ['mssim:host=::1,port=65535', { name: 'mssim', conf: 'host=::1,port=65535' }],
  ])('accepts %s', (s, want) => {
    expect(parseTcti(s)).toEqual(want);
  });

  it.each([
    '',
    'swtpm',
    'swtpm:',
    'mssim',
    'libtpms',
    'DEVICE:/dev/tpmrm0',
    '/dev/tpmrm0',
    'device:dev/tpmrm0',
    'device:/dev/tpm rm0',
    'device:/dev/tpmrm0,mode=x',
    'device:/dev/tpm=0',
    'device:/dev/tpm:0',
    'tabrmd:bus_name=',
    'tabrmd:bus_name=com',
    'tabrmd:bus_name=com.x,bus_name=com.y',
    'tabrmd:bus_type=remote',
    'tabrmd:bus_name=com.x,',
    'tabrmd:owner=root',
    'swtpm:path=relative/tpm.sock',
    `swtpm:path=/${'a'.repeat(107)}`,
    'swtpm:path=/tmp/a,port=2321',
    'swtpm:path=/tmp/a=b',
    'swtpm:host=127.0.0.1,port=0',
    'swtpm:host=127.0.0.1,port=65536',
    'swtpm:host=127.0.0.1,port=02321',
    'swtpm:host=127.0.0.1,port=2321,port=2322',
    'swtpm:host=-evil,port=2321',
    'swtpm:host=a_b,port=1',
    'swtpm:host==x',
    'swtpm:=x',
    'swtpm:,',
    'mssim:path=/tmp/sock',
    'mssim:host=127.0.0.1\n,port=1',
    'device:/dev/tpmrm0\u0000',
    `device:/${'a'.repeat(MAX_TCTI_LENGTH)}`,
  ])('rejects %j with TPM_TCTI_INVALID', (s) => {
    expect(code(() => parseTcti(s))).toBe('TPM_TCTI_INVALID');
  });

  it('rejects non-strings as TPM_TCTI_INVALID', () => {
    expect(code(() => parseTcti(undefined as unknown as string))).toBe('TPM_TCTI_INVALID');
    expect(code(() => parseTcti(42 as unknown as string))).toBe('TPM_TCTI_INVALID');
  });

  it('never throws anything but TPM_TCTI_INVALID', () => {
    const pieces = fc.constantFrom('device', 'tabrmd', 'swtpm', 'mssim', ':', ',', '=', '/', 'path', 'host', 'port',
      'bus_name', 'bus_type', '127.0.0.1', '2321', 'a.b', '..', ' ', '\u0000', 'é');
    const input = fc.oneof(fc.string({ maxLength: 600 }), fc.array(pieces, { maxLength: 12 }).map((p) => p.join('')));
    fc.assert(
      fc.property(input, (s) => {
        const c = code(() => parseTcti(s));
        expect(c === undefined || c === 'TPM_TCTI_INVALID').toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('formats what it accepts into a loader string that parses back the same, with no stray characters', () => {
    const valid = fc.oneof(
      fc.constant('device'),
      fc.stringMatching(/^\/[a-z0-9._-]{1,40}$/).map((p) => `device:${p}`),
      fc.stringMatching(/^\/[a-z0-9._-]{1,40}$/).map((p) => `swtpm:path=${p}`),
      fc.tuple(fc.domain(), fc.integer({ min: 1, max: 65535 })).map(([h, p]) => `mssim:host=${h},port=${p}`),
    );
    fc.assert(
      fc.property(valid, (s) => {
        const cfg = parseTcti(s);
        const loader = formatTcti(cfg);
        expect(parseTcti(loader)).toEqual(cfg);
        expect(loader).toMatch(/^[\x21-\x7e]+$/);
      }),
    );
  });

  it('formatTcti validates configurations it did not produce', () => {
    expect(formatTcti({ name: 'device', conf: '/dev/tpmrm0' })).toBe('device:/dev/tpmrm0');
    expect(formatTcti({ name: 'tabrmd', conf: '' })).toBe('tabrmd:');
    expect(code(() => formatTcti({ name: 'swtpm', conf: 'path=/tmp/x,host=y' }))).toBe('TPM_TCTI_INVALID');
    expect(code(() => formatTcti({ name: 'nope' as 'device', conf: '' }))).toBe('TPM_TCTI_INVALID');
  });
});
