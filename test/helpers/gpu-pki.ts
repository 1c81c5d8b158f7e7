/**
 * A test stand-in for NVIDIA's two PKIs, made with openssl: a device chain (root ->
 * intermediate -> leaf, ECDSA P-384 signed with SHA-384, like NVIDIA's) whose leaf signs SPDM
 * reports, and a RIM signing chain whose leaf signs RIMs (XML-DSig, ECDSA-SHA384, C14N 1.1,
 * enveloped, as NVIDIA's RIMs are). Also builds SPDM 1.1 reports in TypeScript, the same
 * layout test/fake-nvml/fake_nvml.c signs at call time.
 */
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignedXml, C14nCanonicalization } from 'xml-crypto';
import { EnvelopedSignature } from 'xml-crypto/lib/enveloped-signature.js';

export interface TestPki {
  /** Root certificate, PEM: what a trust-roots folder holds. */
  rootPem: string;
  /** Leaf, intermediate, root, PEM: what the device (or RIM KeyInfo) presents. */
  chainPem: string;
  leafKeyPath: string;
  leafKey: KeyObject;
  chainPath: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

function ext(dir: string, name: string, lines: string[]): string {
  const path = join(dir, `${name}.ext`);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp384r1', '-nodes', '-sha384'];

/** root -> intermediate -> leaf under `dir`, named by `label` ("device", "rim", "other"). */
export function makeTestPki(dir: string, label: string): TestPki {
  const d = join(dir, `pki-${label}`);
  mkdirSync(d, { recursive: true });
  openssl(['req', '-x509', ...EC, '-keyout', 'root.key', '-out', 'root.pem', '-days', '3650', '-subj', `/CN=Test ${label} Root CA`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], d);
  const issue = (name: string, issuer: string, cn: string, extLines: string[]) => {
    openssl(['req', '-new', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], d);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-CAcreateserial', '-sha384',
      '-days', '3650', '-out', `${name}.pem`, '-extfile', ext(d, name, extLines)], d);
  };
  issue('ica', 'root', `Test ${label} Intermediate CA`, ['basicConstraints=critical,CA:TRUE,pathlen:0', 'keyUsage=critical,keyCertSign,cRLSign']);
  issue('leaf', 'ica', `Test ${label} FMC LF`, ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature']);
  const pem = (n: string) => readFileSync(join(d, `${n}.pem`), 'utf8');
  const chainPem = pem('leaf') + pem('ica') + pem('root');
  const chainPath = join(d, 'chain.pem');
  writeFileSync(chainPath, chainPem);
  const leafKeyPath = join(d, 'leaf.key');
  return { rootPem: pem('root'), chainPem, chainPath, leafKeyPath, leafKey: createPrivateKey(readFileSync(leafKeyPath)) };
}

/** A trust-roots folder for --gpu-roots: DIR/device/root.pem and DIR/rim/root.pem. */
export function writeGpuRoots(dir: string, device: TestPki, rim?: TestPki): string {
  const roots = join(dir, 'gpu-roots');
  mkdirSync(join(roots, 'device'), { recursive: true });
  writeFileSync(join(roots, 'device', 'root.pem'), device.rootPem);
  if (rim) {
    mkdirSync(join(roots, 'rim'), { recursive: true });
    writeFileSync(join(roots, 'rim', 'root.pem'), rim.rootPem);
  }
  return roots;
}

export interface ReportSpec {
  nonce: Uint8Array;
  /** One 48-byte digest per block, blocks 1.. */
  measurements: Buffer[];
  driverVersion?: string;
  /** "96.00.9F.00.01"; sent as GPUs send it (opaque field 6, 8 bytes). */
  vbiosVersion?: string;
  /** Zero bytes after the signature. */
  trailing?: number;
}

function opaqueField(type: number, value: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt16LE(type, 0);
  h.writeUInt16LE(value.length, 2);
  return Buffer.concat([h, value]);
}

function vbiosBytes(v: string): Buffer {
  const [a, b, c, d, e] = v.split('.').map((x) => parseInt(x, 16));
  return Buffer.from([d ?? 0, c ?? 0, b ?? 0, a ?? 0, e ?? 0, 0, 0, 0]);
}

/** GET_MEASUREMENTS (signature requested, all blocks) then MEASUREMENTS, signed by `key`. */
export function buildSpdmReport(spec: ReportSpec, key: KeyObject): Buffer {
  const request = Buffer.concat([Buffer.from([0x11, 0xe0, 0x01, 0xff]), Buffer.from(spec.nonce), Buffer.from([0])]);
  const record = Buffer.concat(spec.measurements.map((m, i) => {
    const h = Buffer.alloc(7);
    h.writeUInt8(i + 1, 0);
    h.writeUInt8(1, 1);
    h.writeUInt16LE(m.length + 3, 2);
    h.writeUInt8(1, 4);
    h.writeUInt16LE(m.length, 5);
    return Buffer.concat([h, m]);
  }));
  const opaque = Buffer.concat([
    ...(spec.driverVersion ? [opaqueField(3, Buffer.from(`${spec.driverVersion}\0`))] : []),
    ...(spec.vbiosVersion ? [opaqueField(6, vbiosBytes(spec.vbiosVersion))] : []),
  ]);
  const head = Buffer.from([0x11, 0x60, 0, 0, spec.measurements.length, record.length & 0xff, (record.length >> 8) & 0xff, record.length >> 16]);
  const lengths = Buffer.alloc(2);
  lengths.writeUInt16LE(opaque.length, 0);
  const signed = Buffer.concat([request, head, record, Buffer.alloc(32, 0x5a), lengths, opaque]);
  const signature = sign('sha384', signed, { key, dsaEncoding: 'ieee-p1363' });
  return Buffer.concat([signed, signature, Buffer.alloc(spec.trailing ?? 0)]);
}

/** A 48-byte digest to use as measurement `i` of GPU `gpu`. */
export function testDigest(label: string): Buffer {
  return createHash('sha384').update(label).digest();
}

const C14N11 = 'http://www.w3.org/2006/12/xml-c14n11';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
const ECDSA_SHA384 = 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384';
const SHA384 = 'http://www.w3.org/2001/04/xmldsig-more#sha384';

/** A SWID-tag RIM for `version` whose active entries are [RIM index, allowed value] (RIM index k is SPDM block k+1). */
export function rimXml(version: string, entries: [number, Buffer][], name = 'GH100'): string {
  const resources = entries.map(([i, v]) =>
    `<Resource type="Measurement" index="${i}" active="True" alternatives="1" SHA384:Hash0="${v.toString('hex')}" name="Measurement_${i}" size="${v.length}"/>`).join('');
  return '<SoftwareIdentity xmlns="http://standards.iso.org/iso/19770/-2/2015/schema.xsd" xmlns:SHA384="http://www.w3.org/2001/04/xmlenc#sha384" ' +
    `name="${name}" tagId="test-${version}" version="${version}">` +
    `<Meta colloquialVersion="${version}" product="${name}"/><Payload>${resources}</Payload></SoftwareIdentity>`;
}

/** C14N 1.0 computes what C14N 1.1 does for documents without xml:* attributes (as rim-signature.ts notes). */
class C14n11 extends C14nCanonicalization {
  override getAlgorithmName(): string {
    return C14N11;
  }
}

class Sha384 {
  getHash(xml: string): string {
    return createHash('sha384').update(xml, 'utf8').digest('base64');
  }

  getAlgorithmName(): string {
    return SHA384;
  }
}

class EcdsaSha384Signer {
  getSignature(signedInfo: string, privateKey: KeyObject): string {
    return sign('sha384', Buffer.from(signedInfo, 'utf8'), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64');
  }

  verifySignature(): boolean {
    return false;
  }

  getAlgorithmName(): string {
    return ECDSA_SHA384;
  }
}

/** Signs a RIM the way NVIDIA's are: one enveloped Signature, the signing chain in KeyInfo. */
export function signRim(xml: string, pki: TestPki): string {
  const sig = new SignedXml({ privateKey: pki.leafKey as unknown as string });
  sig.CanonicalizationAlgorithms = { [C14N11]: C14n11, [ENVELOPED]: EnvelopedSignature };
  sig.HashAlgorithms = { [SHA384]: Sha384 };
  sig.SignatureAlgorithms = { [ECDSA_SHA384]: EcdsaSha384Signer as never };
  sig.canonicalizationAlgorithm = C14N11 as never;
  sig.signatureAlgorithm = ECDSA_SHA384 as never;
  sig.addReference({ xpath: '/*', transforms: [ENVELOPED, C14N11] as never, digestAlgorithm: SHA384 as never, isEmptyUri: true });
  const certs = pki.chainPem.split('-----END CERTIFICATE-----').map((p) => p.replace(/-----BEGIN CERTIFICATE-----|\s/g, '')).filter((p) => p.length > 0);
  sig.getKeyInfoContent = () => `<X509Data>${certs.map((c) => `<X509Certificate>${c}</X509Certificate>`).join('')}</X509Data>`;
  sig.computeSignature(xml, { location: { reference: '/*', action: 'append' } });
  return sig.getSignedXml();
}
