/** The shared bounded DER reader: each rejection, and only AttestdError on any input. */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { Der, TAG } from '../../daemon/verify/der.js';
import { AttestdError } from '../../daemon/base/errors.js';

const der = (hex: string) => new Der(Buffer.from(hex.replace(/\s/g, ''), 'hex'), 'CVM_REPORT_MALFORMED');
const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as AttestdError).code;
  }
  return 'no error';
};

describe('DER reader', () => {
  it('reads a well-formed SEQUENCE of an INTEGER, an OID and a BOOLEAN', () => {
    const d = der('30 0e 02 01 05 06 06 2a 86 48 86 f7 0d 01 01 ff');
    const [i, o, b] = d.children(d.expect(d.root(), TAG.SEQUENCE, 'seq'));
    expect(d.smallUint(i!)).toBe(5);
    expect(d.oid(o!)).toBe('1.2.840.113549');
    expect(d.boolean(b!)).toBe(true);
  });

  it('refuses what DER forbids, with the code it was made with', () => {
    expect(codeOf(() => der('30 81 03 02 01 05').root())).toBe('CVM_REPORT_MALFORMED'); // non-minimal length
    expect(codeOf(() => der('30 80 02 01 05 00 00').root())).toBe('CVM_REPORT_MALFORMED'); // indefinite length
    expect(codeOf(() => der('1f 81 01 00').root())).toBe('CVM_REPORT_MALFORMED'); // multi-byte tag
    expect(codeOf(() => der('30 03 02 01 05 00').root())).toBe('CVM_REPORT_MALFORMED'); // trailing bytes
    expect(codeOf(() => der('30 05 02 01 05').root())).toBe('CVM_REPORT_MALFORMED'); // overruns
    const d1 = der('02 02 00 05');
    expect(codeOf(() => d1.smallUint(d1.root()))).toBe('CVM_REPORT_MALFORMED'); // non-minimal INTEGER
    const d2 = der('06 03 2a 80 01');
    expect(codeOf(() => d2.oid(d2.root()))).toBe('CVM_REPORT_MALFORMED'); // padded OID arc
    const d3 = der('01 01 01');
    expect(codeOf(() => d3.boolean(d3.root()))).toBe('CVM_REPORT_MALFORMED'); // BOOLEAN not 0x00/0xff
    const d4 = der(`17 0d ${Buffer.from('2e0301000000Z').toString('hex')}`);
    expect(codeOf(() => d4.time(d4.root()))).toBe('CVM_REPORT_MALFORMED'); // non-digit time
  });

  it('throws nothing but AttestdError on random input', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const d = new Der(bytes, 'SNP_CERT_CHAIN_INVALID');
      try {
        const root = d.root();
        if (root.tag & 0x20) for (const c of d.children(root)) d.raw(c);
      } catch (err) {
        expect(err).toBeInstanceOf(AttestdError);
      }
    }));
  });
});
