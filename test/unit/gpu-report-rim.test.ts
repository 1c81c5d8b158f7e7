// verifyRim and parseRimXml on NVIDIA's signed RIMs (SOURCES.md, nvidia/rim rows), and the
// ways a RIM can be tampered with or dressed up.
import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import { AttestdError } from '../../daemon/base/errors.js';
import { NVIDIA_RIM_ROOT_SPKI_SHA256, parseRoots } from '../../daemon/verify/gpu-report/chain.js';
import { parseRimXml } from '../../daemon/verify/gpu-report/rim.js';
import { verifyRim } from '../../daemon/verify/gpu-report/rim-signature.js';
import { MAX_RIM_BYTES } from '../../daemon/verify/gpu-report/xml.js';
import { attestationFixture, rimFixture, RIM_AT, RIM_FILES } from './gpu-report-helpers.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof AttestdError) return err.code;
    throw err;
  }
  return 'PASSED';
}

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof AttestdError) return err.message;
    throw err;
  }
  return 'PASSED';
}

const text = (name: string): string => rimFixture(name).toString('utf8');
const PROD = text('nvtrust_1010_0200_882_96005E0001_PROD.swidtag.xml');
const verifyAt = (xml: string): unknown => verifyRim(xml, { at: RIM_AT });

/** `xml` with the first occurrence of `from` replaced; fails the test if absent. */
function edit(xml: string, from: string, to: string): string {
  const at = xml.indexOf(from);
  expect(at).toBeGreaterThanOrEqual(0);
  return xml.slice(0, at) + to + xml.slice(at + from.length);
}

describe('verifyRim: NVIDIA signed RIMs', () => {
  const versions: Record<string, string> = {
    'nvtrust_1010_0200_882_96005E0001_PROD.swidtag.xml': '96.00.5E.00.01',
    'nvtrust_1010_0200_882_96005E0001_test_no_gpu.swidtag.xml': '96.00.5E.00.01',
    'nvtrust_Driver_RIM_test_no_gpu.swidtag.xml': '545.00',
    'nvtrust_g520_0200_885_9600740001_PROD.swidtag.xml': '96.00.74.00.01',
  };

  it.each(RIM_FILES.map((f) => [f] as const))('%s verifies; content equals the unverified parse', (file) => {
    const v = verifyRim(rimFixture(file), { at: RIM_AT });
    expect(v.signer.commonName).toBe('HCC RIM L4 Signer');
    expect(v.rootSpkiSha256).toBe(NVIDIA_RIM_ROOT_SPKI_SHA256);
    expect(v.rim.colloquialVersion).toBe(versions[file]);
    expect(v.rim.name).toBe('GH100');
    expect(v.rim.measurements).toHaveLength(64);
    expect(v.rim.measurements.map((m) => m.index)).toEqual([...Array(64).keys()]);
    expect(v.rim.measurements.every((m) => m.spdmIndex === m.index + 1 && m.size === 48)).toBe(true);
    expect(v.contentSha384).toMatch(/^[0-9a-f]{96}$/);
    expect(v.rim).toEqual(parseRimXml(rimFixture(file)));
  });

  it('PROD VBIOS RIM: active indices, and index 12 with four alternatives', () => {
    const rim = parseRimXml(PROD);
    expect(rim.measurements.filter((m) => m.active).map((m) => m.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12]);
    expect(rim.measurements[12]?.allowedHex).toHaveLength(4);
    expect(rim.measurements[3]?.allowedHex).toEqual(['73bbf35822549e28ba8fb2671fb7b58f46424a0069205b3ecf1d0fa762adef90b538cc9d692eb5c050147f2f1e8214ab']);
  });

  it('the pinned root is the fixture root; roots may be given explicitly; another root is refused', () => {
    const rootPem = text('nvidia_corim_signing_root_ca.pem');
    const [root] = parseRoots([rootPem], 'RIM_INVALID');
    expect(createHash('sha256').update(root?.spki ?? Buffer.alloc(0)).digest('hex')).toBe(NVIDIA_RIM_ROOT_SPKI_SHA256);
    expect(codeOf(() => verifyRim(PROD, { at: RIM_AT, roots: parseRoots([rootPem], 'RIM_INVALID') }))).toBe('PASSED');
    const deviceRoot = parseRoots([attestationFixture('nvidia_device_identity_root_ca.pem')], 'RIM_INVALID');
    expect(messageOf(() => verifyRim(PROD, { at: RIM_AT, roots: deviceRoot }))).toMatch(/not a trusted root/);
  });

  it('outside the signer\'s validity (2023-06-23 .. 2025-06-22): COLLATERAL_STALE, today included', () => {
    expect(codeOf(() => verifyRim(PROD, { at: new Date('2025-07-01T00:00:00Z') }))).toBe('COLLATERAL_STALE');
    expect(codeOf(() => verifyRim(PROD, { at: new Date('2023-06-01T00:00:00Z') }))).toBe('COLLATERAL_STALE');
    expect(codeOf(() => verifyRim(PROD, { at: new Date() }))).toBe('COLLATERAL_STALE');
  });
});

describe('verifyRim: tampering', () => {
  it('a changed reference value, version, or added Resource breaks the digest', () => {
    const hash3 = '73bbf35822549e28ba8fb2671fb7b58f46424a0069205b3ecf1d0fa762adef90b538cc9d692eb5c050147f2f1e8214ab';
    expect(messageOf(() => verifyAt(edit(PROD, hash3, '00' + hash3.slice(2))))).toMatch(/RIM signature/);
    expect(codeOf(() => verifyAt(edit(PROD, 'index="7" active="False"', 'index="7" active="True"')))).toBe('RIM_INVALID');
    expect(codeOf(() => verifyAt(edit(PROD, 'colloquialVersion="96.00.5E.00.01"', 'colloquialVersion="96.00.9F.00.01"')))).toBe('RIM_INVALID');
    const extra = '<ns0:Resource type="Measurement" index="99" active="True" alternatives="1" ns2:Hash0="' + '11'.repeat(48) + '" name="x" size="48"/>';
    expect(codeOf(() => verifyAt(edit(PROD, '</ns0:Payload>', extra + '</ns0:Payload>')))).toBe('RIM_INVALID');
  });

  it('a changed SignatureValue or DigestValue fails', () => {
    const sig = /<ds:SignatureValue>([^<]+)</.exec(PROD)?.[1] ?? '';
    const swapped = (sig.startsWith('A') ? 'B' : 'A') + sig.slice(1);
    expect(codeOf(() => verifyAt(edit(PROD, sig, swapped)))).toBe('RIM_INVALID');
    const digest = /<ds:DigestValue>([^<]+)</.exec(PROD)?.[1] ?? '';
    expect(codeOf(() => verifyAt(edit(PROD, digest, (digest.startsWith('A') ? 'B' : 'A') + digest.slice(1))))).toBe('RIM_INVALID');
  });

  it('the signer from another RIM (its key did not sign this one) fails', () => {
    const other = text('nvtrust_g520_0200_885_9600740001_PROD.swidtag.xml');
    const certOf = (xml: string): string => /<ds:X509Certificate>([^<]+)</.exec(xml)?.[1] ?? '';
    expect(messageOf(() => verifyAt(edit(PROD, certOf(PROD), certOf(other))))).toMatch(/does not verify|incorrect/);
  });

  it('a KeyInfo chain missing the L3 intermediate fails', () => {
    const certs = [...PROD.matchAll(/<ds:X509Certificate>[^<]+<\/ds:X509Certificate>/g)].map((m) => m[0]);
    expect(certs).toHaveLength(4);
    expect(messageOf(() => verifyAt(edit(PROD, certs[1] ?? '', '')))).toMatch(/was not issued by the next certificate/);
  });

  it('refuses another shape: weaker algorithms, a second Signature, a moved Signature', () => {
    expect(messageOf(() => verifyAt(edit(PROD, 'xmldsig-more#ecdsa-sha384', 'xmldsig-more#rsa-sha256')))).toMatch(/not ECDSA-SHA384/);
    expect(messageOf(() => verifyAt(edit(PROD, '<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#sha384"/>', '<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>')))).toMatch(/not SHA-384/);
    expect(messageOf(() => verifyAt(edit(PROD, '<ds:Reference URI="">', '<ds:Reference URI="#x">')))).toMatch(/URI=""/);
    const signature = PROD.slice(PROD.indexOf('<ds:Signature'), PROD.indexOf('</SoftwareIdentity>'));
    expect(messageOf(() => verifyAt(edit(PROD, '</SoftwareIdentity>', signature + '</SoftwareIdentity>')))).toMatch(/exactly one Signature/);
    const moved = edit(edit(PROD, signature, ''), '</ns0:Payload>', signature + '</ns0:Payload>');
    expect(messageOf(() => verifyAt(moved))).toMatch(/exactly one Signature, a child of the root/);
  });

  it('XML safety: no DTD or entities, a size cap, well-formedness', () => {
    const dtd = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + PROD;
    expect(messageOf(() => verifyAt(dtd))).toMatch(/document type declaration/);
    expect(messageOf(() => parseRimXml(dtd))).toMatch(/document type declaration/);
    expect(messageOf(() => parseRimXml(PROD + ' '.repeat(MAX_RIM_BYTES)))).toMatch(/over/);
    expect(codeOf(() => parseRimXml(PROD.slice(0, 5000)))).toBe('RIM_INVALID');
    expect(codeOf(() => parseRimXml('<a><b></a>'))).toBe('RIM_INVALID');
    // The parser skips a NUL between attributes; the signature would still verify without this rule.
    expect(messageOf(() => verifyAt(edit(PROD, '" alternatives', '"\u0000alternatives')))).toMatch(/character XML does not allow/);
  });
});

describe('parseRimXml: content rules', () => {
  it('refuses bad indices, duplicates, missing hashes and bad flags', () => {
    expect(messageOf(() => parseRimXml(edit(PROD, 'index="5"', 'index="4"')))).toMatch(/index 4 appears twice/);
    expect(messageOf(() => parseRimXml(edit(PROD, 'index="5"', 'index="-5"')))).toMatch(/not an integer/);
    expect(messageOf(() => parseRimXml(edit(PROD, 'active="True"', 'active="yes"')))).toMatch(/not True or False/);
    expect(messageOf(() => parseRimXml(edit(PROD, 'alternatives="1" ns2:Hash0', 'alternatives="2" ns2:Hash0')))).toMatch(/lacks its SHA-384 Hash1/);
    expect(messageOf(() => parseRimXml(edit(PROD, 'size="48"', 'size="32"')))).toMatch(/not 32 bytes of hex/);
    expect(messageOf(() => parseRimXml('<SoftwareIdentity xmlns="urn:other"/>'))).toMatch(/not a SWID SoftwareIdentity/);
  });
});
