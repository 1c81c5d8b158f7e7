/**
 * Finding the certificates an SEV-SNP report needs: from the certificate table the host
 * returns beside an extended report (configfs-tsm auxblob, SNP_GET_EXT_REPORT), or from
 * collateral files. The table is GUID-keyed entries { guid[16], offset u32 LE, length u32 LE }
 * ended by an all-zero GUID; offsets are from the table start. Hostile input: bounded.
 */
import { AttestdError } from '../../base/errors.js';
import { parseAmdCertificate } from '../snp/chain.js';
import { pemCertificates } from '../x509/pem.js';

const GUID_VCEK = '63da758d-e664-4564-adc5-f4b93be8accd';
const GUID_VLEK = 'a8074bc2-a25a-483e-aae6-39c045a0b8a1';
const GUID_ASK = '4ab7b379-bbac-4fe4-a02f-05aef327c782';
const GUID_ARK = 'c0b406a4-a803-4952-9743-3fb6014cd0ae';
const MAX_ENTRIES = 16;

function guidAt(b: Buffer, at: number): string {
  const h = (s: number, e: number, le: boolean) => {
    const part = b.subarray(at + s, at + e);
    return Buffer.from(le ? [...part].reverse() : part).toString('hex');
  };
  return `${h(0, 4, true)}-${h(4, 6, true)}-${h(6, 8, true)}-${h(8, 10, false)}-${h(10, 16, false)}`;
}

export interface SnpCertSet {
  key?: Uint8Array;
  keyKind?: 'VCEK' | 'VLEK';
  ask?: Uint8Array;
  ark?: Uint8Array;
}

export function parseSnpCertTable(table: Uint8Array): SnpCertSet {
  const b = Buffer.from(table);
  const out: SnpCertSet = {};
  for (let i = 0; i < MAX_ENTRIES; i++) {
    const at = i * 24;
    if (at + 24 > b.length) throw new AttestdError('CVM_REPORT_MALFORMED', 'SNP certificate table is not terminated');
    const guid = guidAt(b, at);
    if (guid === '00000000-0000-0000-0000-000000000000') return out;
    const offset = b.readUInt32LE(at + 16);
    const length = b.readUInt32LE(at + 20);
    if (offset > b.length || length > b.length - offset || length === 0) {
      throw new AttestdError('CVM_REPORT_MALFORMED', `SNP certificate table entry ${i} points outside the table`);
    }
    const der = b.subarray(offset, offset + length);
    if (guid === GUID_VCEK || guid === GUID_VLEK) {
      out.key = der;
      out.keyKind = guid === GUID_VCEK ? 'VCEK' : 'VLEK';
    } else if (guid === GUID_ASK) out.ask = der;
    else if (guid === GUID_ARK) out.ark = der;
  }
  throw new AttestdError('CVM_REPORT_MALFORMED', 'SNP certificate table has too many entries');
}

/**
 * Certificates from collateral files by content: self-issued => ARK, issued by an ARK =>
 * ASK/ASVK, the rest => VCEK/VLEK candidates (the verifier checks which one signed).
 */
export function snpCertsFromFiles(files: readonly { name: string; bytes: Uint8Array }[]): { keys: Uint8Array[]; intermediates: Uint8Array[]; arks: Uint8Array[] } {
  const all: Uint8Array[] = [];
  for (const f of files) {
    const text = Buffer.from(f.bytes).toString('latin1');
    if (text.includes('-----BEGIN CERTIFICATE-----')) all.push(...pemCertificates(text, 'SNP_CERT_CHAIN_INVALID', { max: 16 }));
    else if (f.bytes[0] === 0x30) all.push(f.bytes);
  }
  const parsed = all.flatMap((der) => {
    try {
      const c = parseAmdCertificate(der);
      return [{ der, subject: Buffer.from(c.subject).toString("hex"), issuer: Buffer.from(c.issuer).toString("hex") }];
    } catch {
      return [];
    }
  });
  const arks = parsed.filter((c) => c.subject === c.issuer);
  const arkSubjects = new Set(arks.map((c) => c.subject));
  const intermediates = parsed.filter((c) => c.subject !== c.issuer && arkSubjects.has(c.issuer));
  const keys = parsed.filter((c) => c.subject !== c.issuer && !arkSubjects.has(c.issuer));
  return { keys: keys.map((c) => c.der), intermediates: intermediates.map((c) => c.der), arks: arks.map((c) => c.der) };
}
