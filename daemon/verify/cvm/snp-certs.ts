/**
 * Finding the certificates an SEV-SNP report needs: from the certificate table the host
 * returns beside an extended report (configfs-tsm auxblob, SNP_GET_EXT_REPORT), or from
 * collateral files. The table is GUID-keyed entries { guid[16], offset u32 LE, length u32 LE }
 * ended by an all-zero GUID; offsets are from the table start. Hostile input: bounded.
 */
import { AttestdError } from '../../base/errors.js';
import { ByteReader } from '../bytes/reader.js';
import { parseAmdCertificate } from '../snp/chain.js';
import { looksLikeAmdCrl } from '../snp/crl.js';
import { pemBlocks, pemCertificates } from '../x509/pem.js';

const GUID_VCEK = '63da758d-e664-4564-adc5-f4b93be8accd';
const GUID_VLEK = 'a8074bc2-a25a-483e-aae6-39c045a0b8a1';
const GUID_ASK = '4ab7b379-bbac-4fe4-a02f-05aef327c782';
const GUID_ARK = 'c0b406a4-a803-4952-9743-3fb6014cd0ae';
const MAX_ENTRIES = 16;
const ENTRY_SIZE = 24;

/** An EFI_GUID in registry form: its first three fields are little-endian. */
function readGuid(r: ByteReader): string {
  const d1 = r.u32('GUID').toString(16).padStart(8, '0');
  const d2 = r.u16('GUID').toString(16).padStart(4, '0');
  const d3 = r.u16('GUID').toString(16).padStart(4, '0');
  const d4 = r.hex(8, 'GUID');
  return `${d1}-${d2}-${d3}-${d4.slice(0, 4)}-${d4.slice(4)}`;
}

export interface SnpCertSet {
  key?: Uint8Array;
  keyKind?: 'VCEK' | 'VLEK';
  ask?: Uint8Array;
  ark?: Uint8Array;
}

export function parseSnpCertTable(table: Uint8Array): SnpCertSet {
  const b = Buffer.from(table);
  const r = new ByteReader(b, 'le', 'CVM_REPORT_MALFORMED');
  const out: SnpCertSet = {};
  for (let i = 0; i < MAX_ENTRIES; i++) {
    if (r.remaining < ENTRY_SIZE) r.fail('SNP certificate table is not terminated');
    const guid = readGuid(r);
    const offset = r.u32('certificate offset');
    const length = r.u32('certificate length');
    if (guid === '00000000-0000-0000-0000-000000000000') return out;
    if (offset > b.length || length > b.length - offset || length === 0) {
      r.fail(`SNP certificate table entry ${i} points outside the table`);
    }
    // Offsets count from the table's start, so a certificate is cut from the whole table.
    const der = b.subarray(offset, offset + length);
    if (guid === GUID_VCEK || guid === GUID_VLEK) {
      out.key = der;
      out.keyKind = guid === GUID_VCEK ? 'VCEK' : 'VLEK';
    } else if (guid === GUID_ASK) out.ask = der;
    else if (guid === GUID_ARK) out.ark = der;
  }
  throw new AttestdError('CVM_REPORT_MALFORMED', 'SNP certificate table has too many entries');
}

/** What the SEV-SNP collateral files hold, sorted by content. */
export interface SnpCollateral {
  keys: Uint8Array[];
  intermediates: Uint8Array[];
  arks: Uint8Array[];
  /** CRLs issued under an AMD ARK name (DER); the verifier checks whose they are. */
  crls: Uint8Array[];
}

/**
 * Certificates and CRLs from collateral files by content: self-issued => ARK, issued by an
 * ARK => ASK/ASVK, other certificates => VCEK/VLEK candidates (the verifier checks which one
 * signed), CRLs under an ARK-<product> issuer => AMD CRLs. Anything else is passed over (the
 * folder may hold TDX collateral too).
 */
export function snpCertsFromFiles(files: readonly { name: string; bytes: Uint8Array }[]): SnpCollateral {
  const all: Uint8Array[] = [];
  const crls: Uint8Array[] = [];
  for (const f of files) {
    const text = Buffer.from(f.bytes).toString('latin1');
    if (text.includes('-----BEGIN CERTIFICATE-----')) all.push(...pemCertificates(text, 'SNP_CERT_CHAIN_INVALID', { max: 16 }));
    if (text.includes('-----BEGIN X509 CRL-----')) crls.push(...pemBlocks(text, 'X509 CRL', 'SNP_CERT_CHAIN_INVALID').filter(looksLikeAmdCrl));
    else if (f.bytes[0] === 0x30 && looksLikeAmdCrl(f.bytes)) crls.push(f.bytes);
    else if (f.bytes[0] === 0x30) all.push(f.bytes);
  }
  const parsed = all.flatMap((der) => {
    try {
      const c = parseAmdCertificate(der);
      return [{ der, subject: Buffer.from(c.subject).toString('hex'), issuer: Buffer.from(c.issuer).toString('hex') }];
    } catch {
      return [];
    }
  });
  const arks = parsed.filter((c) => c.subject === c.issuer);
  const arkSubjects = new Set(arks.map((c) => c.subject));
  const intermediates = parsed.filter((c) => c.subject !== c.issuer && arkSubjects.has(c.issuer));
  const keys = parsed.filter((c) => c.subject !== c.issuer && !arkSubjects.has(c.issuer));
  return { keys: keys.map((c) => c.der), intermediates: intermediates.map((c) => c.der), arks: arks.map((c) => c.der), crls };
}
