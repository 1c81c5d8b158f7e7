// EK certificate chain verification on real certificates: the TPM vendor CAs shipped with
// keylime (shared/fixtures/tpm/vendor_ca) and a GCE vTPM certificate with its Google chain
// (gce_cos85_nonce9009_ak_cert.der -> gce_tpm_ek_intermediate_2.crt -> gce_tpm_ek_root_1.cer,
// from go-tpm-tools; see shared/fixtures/SOURCES.md). Its SAN carries the TPM fields an EK
// certificate has (manufacturer id:474F4F47 "GOOG", model vTPM).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { derElementLength, trimDer } from '../../daemon/evidence/tpm/ek-cert.js';
import { parseCaBundle, readTpmInfo, verifyEkCertificate, type CaInput } from '../../daemon/verify/ek-cert.js';
import { maySignCertificates } from '../../daemon/verify/x509/chain.js';
import { commonNames } from '../../daemon/verify/x509/name.js';

const TPM = join(import.meta.dirname, '../../../shared/fixtures/tpm');
const VENDOR_DIR = join(TPM, 'vendor_ca');
const leaf = readFileSync(join(TPM, 'gce_cos85_nonce9009_ak_cert.der'));
const intermediate = readFileSync(join(TPM, 'gce_tpm_ek_intermediate_2.crt'));
const otherIntermediate = readFileSync(join(TPM, 'gce_tpm_ek_intermediate_3.crt'));
const root = readFileSync(join(TPM, 'gce_tpm_ek_root_1.cer'));
const vendorFiles = readdirSync(VENDOR_DIR).filter((f) => f.endsWith('.pem')).sort();
const vendor: CaInput[] = vendorFiles.map((f) => readFileSync(join(VENDOR_DIR, f), 'utf8'));
const AT = new Date('2024-06-01T00:00:00Z');

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof AttestdError ? err.code : `not an AttestdError: ${String(err)}`;
  }
}

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  return '';
}

describe('CA bundle', () => {
  it('loads every vendor CA certificate', () => {
    expect(vendorFiles.length).toBe(51);
    const certs = parseCaBundle(vendor);
    expect(certs).toHaveLength(51);
    expect(certs.every(maySignCertificates)).toBe(true);
    expect(certs.some((c) => commonNames(c.subjectName).includes('STM TPM EK Root CA'))).toBe(true);
  });

  it('takes PEM text with several certificates, PEM bytes and DER', () => {
    const pem = readFileSync(join(VENDOR_DIR, 'NTC1.pem'), 'utf8') + readFileSync(join(VENDOR_DIR, 'NTC2.pem'), 'utf8');
    expect(parseCaBundle([pem])).toHaveLength(2);
    expect(parseCaBundle([Buffer.from(pem)])).toHaveLength(2);
    expect(parseCaBundle([root, intermediate])).toHaveLength(2);
  });

  it('refuses an entry that is not a certificate, naming it', () => {
    expect(codeOf(() => parseCaBundle([root, Buffer.from('not a certificate')]))).toBe('EK_CERT_INVALID');
    expect(messageOf(() => parseCaBundle([root, 'no pem here']))).toMatch(/entry 1/);
  });
});

describe('verifyEkCertificate on the GCE chain', () => {
  it('verifies up through the intermediate to the self-signed root', () => {
    const v = verifyEkCertificate(leaf, [intermediate, root], AT);
    expect(v.chain).toHaveLength(3);
    expect(v.chain[1]).toMatch(/tpm_ek_v1_cloud_host-signer-0-2020-10-22/);
    expect(v.chain[2]).toMatch(/tpm_ek_v1_cloud_host_root-signer/);
    expect(v.issuer).toBe(v.chain[1]);
    expect(v.fingerprints).toHaveLength(3);
    expect(v.fingerprints.every((f) => /^[0-9a-f]{64}$/.test(f))).toBe(true);
    expect(v.notBefore.toISOString()).toBe('2021-08-31T23:11:05.000Z');
    expect(v.publicKey.asymmetricKeyType).toBe('rsa');
    expect(v.tpm).toMatchObject({ manufacturer: 'id:474F4F47', model: 'vTPM', version: 'id:20160511' });
  });

  it('finds the path inside a larger bundle, in any order', () => {
    const v = verifyEkCertificate(leaf, [...vendor, root, otherIntermediate, intermediate], AT);
    expect(v.chain).toHaveLength(3);
  });

  it('fails against the vendor CAs alone', () => {
    expect(codeOf(() => verifyEkCertificate(leaf, vendor, AT))).toBe('EK_CERT_INVALID');
    expect(messageOf(() => verifyEkCertificate(leaf, vendor, AT))).toMatch(/no certificate in the CA bundle issued/);
  });

  it('needs the root: an intermediate is never an anchor', () => {
    expect(messageOf(() => verifyEkCertificate(leaf, [intermediate], AT))).toMatch(/not a self-signed root/);
    expect(messageOf(() => verifyEkCertificate(leaf, [intermediate, otherIntermediate, ...vendor], AT))).toMatch(/not a self-signed root/);
  });

  it('needs the intermediate: the root alone did not issue the certificate', () => {
    expect(codeOf(() => verifyEkCertificate(leaf, [root], AT))).toBe('EK_CERT_INVALID');
  });

  it('fails outside the certificate validity', () => {
    expect(messageOf(() => verifyEkCertificate(leaf, [intermediate, root], new Date('2021-01-01Z')))).toMatch(/not valid at/);
    expect(codeOf(() => verifyEkCertificate(leaf, [intermediate, root], new Date('2052-01-01Z')))).toBe('EK_CERT_INVALID');
  });

  it('refuses a CA certificate in place of an EK certificate', () => {
    expect(messageOf(() => verifyEkCertificate(intermediate, [root], AT))).toMatch(/is a CA certificate/);
  });

  it('refuses trailing bytes, an empty input and a bad date', () => {
    expect(codeOf(() => verifyEkCertificate(Buffer.concat([leaf, Buffer.alloc(4)]), [intermediate, root], AT))).toBe('EK_CERT_INVALID');
    expect(codeOf(() => verifyEkCertificate(Buffer.alloc(0), [intermediate, root], AT))).toBe('EK_CERT_INVALID');
    expect(codeOf(() => verifyEkCertificate(leaf, [intermediate, root], new Date('nope')))).toBe('INVALID_ARGUMENT');
  });

  it('refuses the certificate with any single byte changed', () => {
    fc.assert(
      fc.property(fc.nat(leaf.length - 1), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const bad = Buffer.from(leaf);
        bad[at] = (bad[at] as number) ^ xor;
        expect(codeOf(() => verifyEkCertificate(bad, [intermediate, root], AT))).toBe('EK_CERT_INVALID');
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a chain whose intermediate signature is tampered with', () => {
    const bad = Buffer.from(intermediate);
    bad[bad.length - 10] = (bad[bad.length - 10] as number) ^ 1;
    expect(messageOf(() => verifyEkCertificate(leaf, [bad, root], AT))).toMatch(/does not verify|not a self-signed root/);
  });
});

describe('readTpmInfo', () => {
  it('reads nothing from a certificate without TPM fields', () => {
    expect(readTpmInfo(root)).toEqual({});
  });

  it('either reads or throws EK_CERT_INVALID on arbitrary bytes and mutations', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const code = codeOf(() => readTpmInfo(bytes));
        expect(code === undefined || code === 'EK_CERT_INVALID').toBe(true);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.nat(leaf.length - 1), fc.nat(255), (at, value) => {
        const bad = Buffer.from(leaf);
        bad[at] = value;
        const code = codeOf(() => readTpmInfo(bad));
        expect(code === undefined || code === 'EK_CERT_INVALID').toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('trimDer', () => {
  it('strips the padding after a certificate stored in a larger NV index', () => {
    for (const pad of [0x00, 0xff]) {
      const padded = Buffer.concat([leaf, Buffer.alloc(300, pad)]);
      expect(trimDer(padded).equals(leaf)).toBe(true);
    }
    expect(trimDer(leaf)).toBe(leaf);
  });

  it('returns anything that is not a whole DER SEQUENCE unchanged', () => {
    expect(trimDer(leaf.subarray(0, 100)).length).toBe(100);
    expect(trimDer(Buffer.from([0xff, 0xff])).length).toBe(2);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const b = Buffer.from(bytes);
        const out = trimDer(b);
        const length = derElementLength(b);
        expect(out.length).toBe(length ?? b.length);
        expect(out.equals(b.subarray(0, out.length))).toBe(true);
      }),
    );
  });
});
