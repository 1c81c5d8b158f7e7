// The shared X.509 module (daemon/verify/x509) on the recorded certificates of every PKI the
// verifiers check (AMD, Intel, NVIDIA, TPM vendors; shared/fixtures/SOURCES.md), and on
// encodings built here to show each rule: DER only, the parse cache, names, signature schemes.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { Asn1Reader, TAG } from '../../daemon/verify/x509/asn1.js';
import { DigestCache, memo } from '../../daemon/verify/x509/cache.js';
import { cachedCertificates, clearCertificateCache, parseCertificate, spkiSha256 } from '../../daemon/verify/x509/certificate.js';
import { isSelfSigned, linkProblem, maySignCertificates, signedBy } from '../../daemon/verify/x509/chain.js';
import { parseCrl } from '../../daemon/verify/x509/crl.js';
import { KEY_USAGE } from '../../daemon/verify/x509/extensions.js';
import { nameKey } from '../../daemon/verify/x509/name.js';
import { likelyIssuedBy } from '../../daemon/verify/x509/path.js';
import { pemBlocks, pemCertificates } from '../../daemon/verify/x509/pem.js';

const FIXTURES = join(import.meta.dirname, '../../../shared/fixtures');
const fixture = (path: string): Buffer => readFileSync(join(FIXTURES, path));
const pem = (path: string): Buffer[] => pemCertificates(fixture(path), 'INVALID_ARGUMENT', { max: 16 });

const [amdAsk, amdArk] = pem('sev-snp/amd_ask_ark_milan.pem') as [Buffer, Buffer];
const vcek = fixture('sev-snp/trustee_milan_vcek.der');
const [intelRoot] = pem('tdx/intel_sgx_root_ca.pem') as [Buffer];
const [nvidiaLeaf, ...nvidiaRest] = pem('nvidia/attestation/nvtrust_h100_device_cert_chain.pem') as [Buffer, ...Buffer[]];
const gceLeaf = fixture('tpm/gce_cos85_nonce9009_ak_cert.der');
const gceIntermediate = fixture('tpm/gce_tpm_ek_intermediate_2.crt');
const rootCrl = fixture('tdx/gotdxguest_intel_sgx_root_crl.der');
const platformCrl = fixture('tdx/gotdxguest_pck_platform_crl.der');

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s/g, ''), 'hex');

function failure(fn: () => unknown): { code: string; message: string } | 'no error' {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof AttestdError)) throw err;
    return { code: err.code, message: err.message };
  }
  return 'no error';
}
const codeOf = (fn: () => unknown): string => {
  const f = failure(fn);
  return f === 'no error' ? f : f.code;
};

/** DER TLV, short or long length form as needed. */
function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), content]);
}

/** The top-level elements of a DER SEQUENCE (tag, length and content of each). */
function elements(der: Buffer): Buffer[] {
  const r = new Asn1Reader('INVALID_ARGUMENT');
  return r.children(r.decode(der, 'test input'), 'test input').map((n) => r.raw(n));
}

describe('DER rules on what the library decodes', () => {
  const r = new Asn1Reader('CVM_REPORT_MALFORMED');

  it('reads a SEQUENCE of an INTEGER, an OID and a BOOLEAN', () => {
    const [i, o, b] = r.children(r.expect(r.decode(hex('30 0e 02 01 05 06 06 2a 86 48 86 f7 0d 01 01 ff'), 'x'), TAG.SEQUENCE, 'x'), 'x');
    expect(r.smallUint(i!)).toBe(5);
    expect(r.oid(o!)).toBe('1.2.840.113549');
    expect(r.boolean(b!)).toBe(true);
  });

  it('refuses what DER forbids, with the code the reader was made with', () => {
    for (const bad of [
      '30 81 03 02 01 05', // non-minimal length
      '30 80 02 01 05 00 00', // indefinite length
      '1f 81 01 00', // multi-byte tag
      '30 03 02 01 05 00', // trailing bytes
      '30 05 02 01 05', // overruns
      '30 03 01 01 01', // BOOLEAN neither 0x00 nor 0xff
      '24 03 04 01 00', // constructed OCTET STRING
      '10 00', // primitive SEQUENCE
      '', // nothing
    ]) expect(codeOf(() => r.decode(hex(bad), 'x')), bad).toBe('CVM_REPORT_MALFORMED');
    expect(codeOf(() => r.smallUint(r.decode(hex('02 02 00 05'), 'x')))).toBe('CVM_REPORT_MALFORMED'); // non-minimal INTEGER
    expect(codeOf(() => r.smallUint(r.decode(hex('02 01 80'), 'x')))).toBe('CVM_REPORT_MALFORMED'); // negative
    expect(codeOf(() => r.oid(r.decode(hex('06 03 2a 80 01'), 'x')))).toBe('CVM_REPORT_MALFORMED'); // padded OID arc
    expect(codeOf(() => r.oid(r.decode(hex('06 02 2a 86'), 'x')))).toBe('CVM_REPORT_MALFORMED'); // ends inside an arc
    expect(codeOf(() => r.time(r.decode(tlv(0x17, Buffer.from('2e0301000000Z')), 'x')))).toBe('CVM_REPORT_MALFORMED'); // non-digit
    expect(codeOf(() => r.time(r.decode(tlv(0x17, Buffer.from('230231000000Z')), 'x')))).toBe('CVM_REPORT_MALFORMED'); // 31 February
    expect(codeOf(() => r.time(r.decode(tlv(0x17, Buffer.from('2302010000Z')), 'x')))).toBe('CVM_REPORT_MALFORMED'); // no seconds
    expect(r.time(r.decode(tlv(0x18, Buffer.from('20500101000000Z')), 'x')).toISOString()).toBe('2050-01-01T00:00:00.000Z');
  });

  it('a nesting deeper than any certificate is refused, not a stack overflow', () => {
    let deep = hex('05 00');
    for (let i = 0; i < 3000; i++) deep = tlv(0x30, deep);
    expect(codeOf(() => r.decode(deep, 'x'))).toBe('CVM_REPORT_MALFORMED');
    expect(codeOf(() => parseCertificate(deep, 'SNP_CERT_CHAIN_INVALID'))).toBe('SNP_CERT_CHAIN_INVALID');
  });
});

describe('parseCertificate on every PKI the verifiers check', () => {
  it('reads the recorded AMD, Intel, NVIDIA and TPM vendor certificates', () => {
    const vendors = readdirSync(join(FIXTURES, 'tpm/vendor_ca')).filter((f) => f.endsWith('.pem'));
    const all = [amdArk, amdAsk, vcek, intelRoot, nvidiaLeaf, ...nvidiaRest, gceLeaf, gceIntermediate,
      ...vendors.flatMap((f) => pem(`tpm/vendor_ca/${f}`))];
    for (const der of all) {
      const c = parseCertificate(der, 'INVALID_ARGUMENT');
      expect(c.der.equals(der)).toBe(true);
      expect(c.publicKey).toBeDefined();
      expect(c.scheme.kind).not.toBe('unsupported');
      if (c.subject.equals(c.issuer)) expect(isSelfSigned(c)).toBe(true);
    }
  });

  it('decodes the fields the chains use', () => {
    const ark = parseCertificate(amdArk, 'SNP_CERT_CHAIN_INVALID');
    expect(ark).toMatchObject({ version: 3, commonName: 'ARK-Milan', isCa: true, scheme: { kind: 'rsa-pss', hash: 'sha384', mgfHash: 'sha384', saltLength: 48 } });
    expect(maySignCertificates(ark)).toBe(true);
    expect((ark.keyUsage ?? 0) & KEY_USAGE.KEY_CERT_SIGN).toBeTruthy();
    const ask = parseCertificate(amdAsk, 'SNP_CERT_CHAIN_INVALID');
    expect(ask.pathLen).toBe(0);
    expect(linkProblem(ask, ark, 0, { keyUsage: true, pathLength: true })).toBeUndefined();
    expect(signedBy(ask, ark)).toBe(true);
    expect(signedBy(ark, ask)).toBe(false);
    const leaf = parseCertificate(vcek, 'SNP_CERT_CHAIN_INVALID');
    expect(leaf.serialHex).toBe('00');
    expect(leaf.extensions.get('1.3.6.1.4.1.3704.1.2')?.toString('latin1')).toMatch(/Milan-B0/);
    const root = parseCertificate(intelRoot, 'TDX_CERT_CHAIN_INVALID');
    expect(root).toMatchObject({ commonName: 'Intel SGX Root CA', scheme: { kind: 'ecdsa', hash: 'sha256' } });
    expect(spkiSha256(root)).toBe('a0af031289f5d5d4132f9186068a7fc13628633ba235777472e29b6b6c67a49e');
    expect(root.notAfter.toISOString()).toBe('2049-12-31T23:59:59.000Z');
  });

  it('refuses trailing bytes, a truncation and oversized input, with the caller\'s code', () => {
    expect(codeOf(() => parseCertificate(Buffer.concat([vcek, hex('00')]), 'SNP_CERT_CHAIN_INVALID'))).toBe('SNP_CERT_CHAIN_INVALID');
    expect(codeOf(() => parseCertificate(vcek.subarray(0, vcek.length - 1), 'TDX_CERT_CHAIN_INVALID'))).toBe('TDX_CERT_CHAIN_INVALID');
    expect(codeOf(() => parseCertificate(Buffer.alloc(0), 'EK_CERT_INVALID'))).toBe('EK_CERT_INVALID');
    expect(codeOf(() => parseCertificate(Buffer.alloc(20_000, 0x30), 'GPU_CERT_CHAIN_INVALID'))).toBe('GPU_CERT_CHAIN_INVALID');
  });

  it('refuses an extra element, an unused-bits signature, and the inner algorithm differing from the outer', () => {
    const [tbs, alg, sig] = elements(vcek) as [Buffer, Buffer, Buffer];
    const extra = tlv(0x30, Buffer.concat([tbs, alg, sig, hex('05 00')]));
    expect(codeOf(() => parseCertificate(extra, 'SNP_CERT_CHAIN_INVALID'))).toBe('SNP_CERT_CHAIN_INVALID');
    const unused = Buffer.from(sig);
    unused[sig[1] === 0x82 ? 4 : sig[1] === 0x81 ? 3 : 2] = 1;
    const f = failure(() => parseCertificate(tlv(0x30, Buffer.concat([tbs, alg, unused])), 'SNP_CERT_CHAIN_INVALID'));
    expect(f).not.toBe('no error');
    if (f !== 'no error') expect(f.message).toMatch(/unused-bits/);
    const ecdsa = elements(intelRoot)[1] as Buffer;
    expect(codeOf(() => parseCertificate(tlv(0x30, Buffer.concat([tbs, ecdsa, sig])), 'SNP_CERT_CHAIN_INVALID'))).toBe('SNP_CERT_CHAIN_INVALID');
  });

  it('DER only by default; BER as OpenSSL reads it only when asked (TPM vendor certificates)', () => {
    // The Intel root with its version INTEGER spelled with a needless leading zero byte: the
    // same content, not DER (and no longer the signed bytes, which parsing does not check).
    const [tbs, alg, sig] = elements(intelRoot) as [Buffer, Buffer, Buffer];
    const fields = elements(tbs);
    expect(fields[0]?.equals(hex('a0 03 02 01 02'))).toBe(true);
    const loose = tlv(0x30, Buffer.concat([tlv(0x30, Buffer.concat([hex('a0 04 02 02 00 02'), ...fields.slice(1)])), alg, sig]));
    clearCertificateCache();
    const ber = parseCertificate(loose, 'EK_CERT_INVALID', { encoding: 'ber' });
    expect(ber.version).toBe(3);
    expect(ber.canonical).toBeUndefined();
    // Asked for DER afterwards, the same (cached) bytes are checked and refused.
    expect(codeOf(() => parseCertificate(loose, 'TDX_CERT_CHAIN_INVALID'))).toBe('TDX_CERT_CHAIN_INVALID');
    expect(parseCertificate(loose, 'EK_CERT_INVALID', { encoding: 'ber' }).canonical).toBe(false);
    expect(parseCertificate(intelRoot, 'TDX_CERT_CHAIN_INVALID').canonical).toBe(true);
  });
});

describe('the parse cache', () => {
  it('returns the certificate parsed before, by digest, and a copy the caller cannot change', () => {
    clearCertificateCache();
    const mine = Buffer.from(vcek);
    const first = parseCertificate(mine, 'SNP_CERT_CHAIN_INVALID');
    expect(cachedCertificates()).toBe(1);
    mine[mine.length - 1] = (mine[mine.length - 1] as number) ^ 0xff;
    expect(first.der.equals(vcek)).toBe(true);
    expect(parseCertificate(Buffer.from(vcek), 'SNP_CERT_CHAIN_INVALID')).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    // The changed bytes are another certificate, parsed on their own.
    expect(parseCertificate(mine, 'SNP_CERT_CHAIN_INVALID')).not.toBe(first);
  });

  it('a fresh parse gives the same answer as the cached one', () => {
    const cached = parseCertificate(amdAsk, 'SNP_CERT_CHAIN_INVALID');
    clearCertificateCache();
    const fresh = parseCertificate(amdAsk, 'SNP_CERT_CHAIN_INVALID');
    expect(fresh).not.toBe(cached);
    const { publicKey: a, issuerName: _i1, subjectName: _s1, ...restA } = cached;
    const { publicKey: b, issuerName: _i2, subjectName: _s2, ...restB } = fresh;
    expect(restB).toEqual(restA);
    expect(a?.equals(b!)).toBe(true);
  });

  it('is bounded, evicting the least recently used entry', () => {
    const c = new DigestCache<number>(2);
    c.set('a', 1);
    c.set('b', 2);
    expect(c.get('a')).toBe(1);
    c.set('c', 3);
    expect(c.get('b')).toBeUndefined();
    expect([c.get('a'), c.get('c'), c.size]).toEqual([1, 3, 2]);
  });

  it('memo keeps a value per object, not for a spread copy, and not a failure', () => {
    const owner = {};
    let runs = 0;
    expect(memo(owner, 'k', () => ++runs)).toBe(1);
    expect(memo(owner, 'k', () => ++runs)).toBe(1);
    expect(memo({ ...owner }, 'k', () => ++runs)).toBe(2);
    expect(() => memo(owner, 'boom', () => { throw new Error('x'); })).toThrow();
    expect(memo(owner, 'boom', () => 7)).toBe(7);
  });
});

describe('CRLs', () => {
  it('reads Intel\'s root and platform CRLs', () => {
    const root = parseCrl(rootCrl, 'TDX_COLLATERAL_INVALID');
    expect(root.issuerCommonName).toBe('Intel SGX Root CA');
    expect(root.scheme).toEqual({ kind: 'ecdsa', hash: 'sha256' });
    const platform = parseCrl(platformCrl, 'TDX_COLLATERAL_INVALID');
    expect(platform.issuerCommonName).toBe('Intel SGX PCK Platform CA');
    expect(platform.revokedSerials.size).toBeGreaterThan(0);
    expect([...platform.revokedSerials].every((s) => /^([0-9a-f]{2})+$/.test(s) && !s.startsWith('00'))).toBe(true);
    expect(platform.nextUpdate!.getTime()).toBeGreaterThan(platform.thisUpdate.getTime());
  });

  it('refuses a certificate, trailing bytes and a truncation', () => {
    expect(codeOf(() => parseCrl(intelRoot, 'TDX_COLLATERAL_INVALID'))).toBe('TDX_COLLATERAL_INVALID');
    expect(codeOf(() => parseCrl(Buffer.concat([rootCrl, hex('00')]), 'TDX_COLLATERAL_INVALID'))).toBe('TDX_COLLATERAL_INVALID');
    expect(codeOf(() => parseCrl(rootCrl.subarray(0, 100), 'TDX_COLLATERAL_INVALID'))).toBe('TDX_COLLATERAL_INVALID');
  });
});

describe('names and issuers as OpenSSL links them (EK chains)', () => {
  it('compares string attributes case- and space-insensitively, other types by encoding', () => {
    const name = (cn: string, tag = 0x0c): Buffer => tlv(0x30, tlv(0x31, tlv(0x30, Buffer.concat([hex('06 03 55 04 03'), tlv(tag, Buffer.from(cn))]))));
    const key = (der: Buffer): string => {
      const root = parseCertificate(intelRoot, 'INVALID_ARGUMENT');
      const fields = elements(elements(intelRoot)[0] as Buffer);
      // Issuer and subject are the same bytes in a root: the subject is the later one.
      const at = fields.map((f) => f.equals(root.subject)).lastIndexOf(true);
      fields[at] = der;
      const [, alg, sig] = elements(intelRoot) as [Buffer, Buffer, Buffer];
      return nameKey(parseCertificate(tlv(0x30, Buffer.concat([tlv(0x30, Buffer.concat(fields)), alg, sig])), 'INVALID_ARGUMENT', { encoding: 'ber' }).subjectName);
    };
    expect(key(name('Intel  SGX Root CA '))).toBe(key(name('intel sgx root ca', 0x13)));
    expect(key(name('Intel SGX Root CA'))).not.toBe(key(name('Intel SGX Root CB')));
    expect(key(name('1234', 0x12))).not.toBe(key(name('1234', 0x13)));
  });

  it('links the GCE EK certificate to its intermediate, not the reverse', () => {
    const leaf = parseCertificate(gceLeaf, 'EK_CERT_INVALID', { encoding: 'ber' });
    const ca = parseCertificate(gceIntermediate, 'EK_CERT_INVALID', { encoding: 'ber' });
    expect(likelyIssuedBy(leaf, ca)).toBe(true);
    expect(likelyIssuedBy(ca, leaf)).toBe(false);
    expect(signedBy(leaf, ca)).toBe(true);
  });
});

describe('PEM', () => {
  it('reads blocks of a label, bounded in count and size, and refuses what is not base64', () => {
    const text = readFileSync(join(FIXTURES, 'sev-snp/amd_ask_ark_milan.pem'), 'utf8');
    expect(pemCertificates(text, 'SNP_CERT_CHAIN_INVALID')).toHaveLength(2);
    expect(codeOf(() => pemCertificates(text, 'SNP_CERT_CHAIN_INVALID', { max: 1 }))).toBe('SNP_CERT_CHAIN_INVALID');
    expect(codeOf(() => pemCertificates(text, 'SNP_CERT_CHAIN_INVALID', { maxChars: 100 }))).toBe('SNP_CERT_CHAIN_INVALID');
    expect(codeOf(() => pemCertificates(`${text}trailer`, 'TDX_CERT_CHAIN_INVALID', { nothingAfter: true }))).toBe('TDX_CERT_CHAIN_INVALID');
    expect(codeOf(() => pemCertificates('-----BEGIN CERTIFICATE-----\nMII*\n-----END CERTIFICATE-----', 'GPU_CERT_CHAIN_INVALID'))).toBe('GPU_CERT_CHAIN_INVALID');
    expect(codeOf(() => pemCertificates('-----BEGIN CERTIFICATE-----\nMIIB\n', 'GPU_CERT_CHAIN_INVALID'))).toBe('GPU_CERT_CHAIN_INVALID');
    expect(pemBlocks(text, 'X509 CRL', 'TDX_COLLATERAL_INVALID')).toEqual([]);
  });
});
