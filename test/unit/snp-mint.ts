// Synthetic AMD-shaped key hierarchies and SEV-SNP reports signed with keys made here, for
// what the recorded fixtures cannot show: a Turin report (none was published), version 5,
// chip-id and CPU mismatches under a valid signature. A minimal DER writer, nothing more.
import { constants, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else if (n < 0x100) len = Buffer.from([0x81, n]);
  else len = Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, content]);
}
const seq = (...p: Buffer[]): Buffer => tlv(0x30, Buffer.concat(p));
const set = (...p: Buffer[]): Buffer => tlv(0x31, Buffer.concat(p));
const ctx = (n: number, ...p: Buffer[]): Buffer => tlv(0xa0 | n, Buffer.concat(p));
const nul = (): Buffer => Buffer.from([0x05, 0x00]);
export const derInt = (v: number): Buffer => {
  const bytes: number[] = [];
  let x = v;
  do { bytes.unshift(x & 0xff); x = Math.floor(x / 256); } while (x > 0);
  if ((bytes[0] as number) & 0x80) bytes.unshift(0);
  return tlv(0x02, Buffer.from(bytes));
};
export const derIa5 = (s: string): Buffer => tlv(0x16, Buffer.from(s, 'latin1'));
export const derOctets = (b: Buffer): Buffer => tlv(0x04, b);
const bool = (b: boolean): Buffer => Buffer.from([0x01, 0x01, b ? 0xff : 0]);
function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [40 * (arcs[0] as number) + (arcs[1] as number)];
  for (const a of arcs.slice(2)) {
    const chunk: number[] = [a & 0x7f];
    let x = Math.floor(a / 128);
    while (x > 0) { chunk.unshift((x & 0x7f) | 0x80); x = Math.floor(x / 128); }
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}
function time(d: Date): Buffer {
  const s = d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
  return tlv(0x17, Buffer.from(s, 'latin1'));
}
const name = (cn: string): Buffer => seq(set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn, 'utf8')))));
/** The DER pieces, for the TDX minter beside this one. */
export const der = { tlv, seq, set, ctx, oid, time, name, bool };

const SHA384 = seq(oid('2.16.840.1.101.3.4.2.2'), nul());
const PSS_ALG = seq(oid('1.2.840.113549.1.1.10'), seq(ctx(0, SHA384), ctx(1, seq(oid('1.2.840.113549.1.1.8'), SHA384)), ctx(2, derInt(48))));

export interface MintOptions {
  subject: string;
  issuer: string;
  spki: Buffer;
  signer: KeyObject;
  notBefore?: Date;
  notAfter?: Date;
  ca?: boolean;
  serial?: number;
  /** [oid, extnValue content, critical] */
  extensions?: [string, Buffer, boolean?][];
}

export function mintCert(o: MintOptions): Buffer {
  const exts: Buffer[] = [];
  if (o.ca) {
    exts.push(seq(oid('2.5.29.19'), bool(true), derOctets(seq(bool(true)))));
    exts.push(seq(oid('2.5.29.15'), bool(true), derOctets(tlv(0x03, Buffer.from([0x01, 0x06])))));
  }
  for (const [id, value, critical] of o.extensions ?? []) exts.push(seq(oid(id), ...(critical ? [bool(true)] : []), derOctets(value)));
  const tbs = seq(
    ctx(0, derInt(2)), derInt(o.serial ?? 0x1234), PSS_ALG, name(o.issuer),
    seq(time(o.notBefore ?? new Date('2023-01-01T00:00:00Z')), time(o.notAfter ?? new Date('2040-01-01T00:00:00Z'))),
    name(o.subject), o.spki, ...(exts.length ? [ctx(3, seq(...exts))] : []),
  );
  const sig = sign('sha384', tbs, { key: o.signer, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 });
  return seq(tbs, PSS_ALG, tlv(0x03, Buffer.concat([Buffer.from([0]), sig])));
}

const spkiOf = (k: KeyObject): Buffer => k.export({ type: 'spki', format: 'der' });
const AMD = '1.3.6.1.4.1.3704.1';

export interface Hierarchy {
  ark: Buffer;
  /** The ASK, or the ASVK of a VLEK hierarchy. */
  ask: Buffer;
  /** The VCEK, or the VLEK of a VLEK hierarchy. */
  vcek: Buffer;
  vcekKey: KeyObject;
  arkKey: KeyObject;
}

export interface HierarchyOptions {
  /** ARK -> ASVK -> VLEK instead of ARK -> ASK -> VCEK (a VLEK has no hwID). */
  vlek?: boolean;
  /** Mark the leaf as a CA (basicConstraints cA=true), which no VCEK or VLEK is. */
  leafCa?: boolean;
  /** RSA modulus of the ARK and ASK/ASVK; AMD's are 4096 bits, 2048 keeps tests quick. */
  rsaBits?: number;
  /** Serial number of the ASK/ASVK (the one an AMD CRL lists). */
  midSerial?: number;
}

/** ARK-P -> SEV-P -> SEV-VCEK (or ARK-P -> SEV-VLEK-P -> SEV-VLEK) with the given TCB and hwID. */
export function mintHierarchy(product: string, productName: string, tcb: Record<string, number>, hwId: Buffer, o: HierarchyOptions = {}): Hierarchy {
  const modulusLength = o.rsaBits ?? 2048;
  const arkKeys = generateKeyPairSync('rsa', { modulusLength });
  const askKeys = generateKeyPairSync('rsa', { modulusLength });
  const vcekKeys = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const mid = o.vlek ? `SEV-VLEK-${product}` : `SEV-${product}`;
  const ark = mintCert({ subject: `ARK-${product}`, issuer: `ARK-${product}`, spki: spkiOf(arkKeys.publicKey), signer: arkKeys.privateKey, ca: true });
  const ask = mintCert({ subject: mid, issuer: `ARK-${product}`, spki: spkiOf(askKeys.publicKey), signer: arkKeys.privateKey, ca: true, serial: o.midSerial });
  const splOid: Record<string, string> = { bootloader: '3.1', tee: '3.2', snp: '3.3', microcode: '3.8', fmc: '3.9' };
  const vcek = mintCert({
    subject: o.vlek ? 'SEV-VLEK' : 'SEV-VCEK', issuer: mid, spki: spkiOf(vcekKeys.publicKey), signer: askKeys.privateKey, ca: o.leafCa,
    extensions: [
      [`${AMD}.1`, derInt(1)],
      [`${AMD}.2`, derIa5(productName)],
      ...Object.entries(tcb).map(([k, v]): [string, Buffer] => [`${AMD}.${splOid[k] ?? ''}`, derInt(v)]),
      o.vlek ? [`${AMD}.5`, derIa5('CN=test-csp')] : [`${AMD}.4`, hwId],
    ],
  });
  return { ark, ask, vcek, vcekKey: vcekKeys.privateKey, arkKey: arkKeys.privateKey };
}

export interface CrlOptions {
  issuer: string;
  /** The issuer Name as encoded, to use instead of CN=`issuer` (a real ARK's full name). */
  issuerName?: Buffer;
  signer: KeyObject;
  revoked: number[];
  thisUpdate?: Date;
  nextUpdate?: Date;
}

/** An X.509 v2 CRL signed like AMD's (RSASSA-PSS SHA-384, salt 48). */
export function mintCrl(o: CrlOptions): Buffer {
  const entries = o.revoked.map((serial) => seq(derInt(serial), time(new Date('2024-01-01T00:00:00Z'))));
  const tbs = seq(
    derInt(1), PSS_ALG, o.issuerName ?? name(o.issuer),
    time(o.thisUpdate ?? new Date('2024-06-01T00:00:00Z')), time(o.nextUpdate ?? new Date('2040-01-01T00:00:00Z')),
    ...(entries.length ? [seq(...entries)] : []),
  );
  const sig = sign('sha384', tbs, { key: o.signer, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 });
  return seq(tbs, PSS_ALG, tlv(0x03, Buffer.concat([Buffer.from([0]), sig])));
}

export interface ReportOptions {
  version: number;
  cpuid?: [number, number, number];
  /** The 8 TCB bytes in report order. */
  reportedTcb: number[];
  chipId: Buffer;
  signingKey?: number;
  policy?: bigint;
  reportData?: Buffer;
  vmpl?: number;
  /** The launch MEASUREMENT (48 bytes); default 0x5a repeated. */
  measurement?: Buffer;
}

/** A 1184-byte report, signed with `key` the way the firmware does (r, s little-endian). */
export function mintReport(o: ReportOptions, key: KeyObject): Buffer {
  const b = Buffer.alloc(1184);
  b.writeUInt32LE(o.version, 0);
  b.writeUInt32LE(1, 4);
  b.writeBigUInt64LE(o.policy ?? 0x30000n, 8);
  b.writeUInt32LE(o.vmpl ?? 0, 0x30);
  b.writeUInt32LE(1, 0x34);
  b.writeUInt32LE((o.signingKey ?? 0) << 2, 0x48);
  (o.reportData ?? Buffer.alloc(64, 0xab)).copy(b, 0x50);
  (o.measurement ?? Buffer.alloc(48, 0x5a)).copy(b, 0x90);
  for (const at of [0x38, 0x180, 0x1e0, 0x1f0]) Buffer.from(o.reportedTcb).copy(b, at);
  if (o.cpuid) Buffer.from(o.cpuid).copy(b, 0x188);
  o.chipId.copy(b, 0x1a0);
  const sig = sign('sha384', b.subarray(0, 0x2a0), { key, dsaEncoding: 'ieee-p1363' });
  Buffer.from(sig.subarray(0, 48)).reverse().copy(b, 0x2a0);
  Buffer.from(sig.subarray(48, 96)).reverse().copy(b, 0x2a0 + 72);
  return b;
}

/** The GUIDs of the SNP certificate table (GHCB spec, SNP extended guest request). */
export const CERT_GUID = {
  VCEK: '63da758d-e664-4564-adc5-f4b93be8accd',
  VLEK: 'a8074bc2-a25a-483e-aae6-39c045a0b8a1',
  ASK: '4ab7b379-bbac-4fe4-a02f-05aef327c782',
  ARK: 'c0b406a4-a803-4952-9743-3fb6014cd0ae',
} as const;

/** The SNP certificate table a host hands out: GUID entries, an all-zero one, then the certificates. */
export function mintCertTable(certs: [string, Buffer][]): Buffer {
  const guid = (g: string): Buffer => {
    const b = Buffer.from(g.replace(/-/g, ''), 'hex');
    return Buffer.concat([Buffer.from(b.subarray(0, 4)).reverse(), Buffer.from(b.subarray(4, 6)).reverse(), Buffer.from(b.subarray(6, 8)).reverse(), b.subarray(8)]);
  };
  let offset = 24 * (certs.length + 1);
  const entries: Buffer[] = [];
  for (const [g, der] of certs) {
    const e = Buffer.alloc(24);
    guid(g).copy(e, 0);
    e.writeUInt32LE(offset, 16);
    e.writeUInt32LE(der.length, 20);
    entries.push(e);
    offset += der.length;
  }
  return Buffer.concat([...entries, Buffer.alloc(24), ...certs.map(([, d]) => d)]);
}
