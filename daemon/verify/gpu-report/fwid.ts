/**
 * The firmware identity (FWID) that NVIDIA attestation leaves carry in a TCG DICE
 * extension. Two encodings occur in real certificates:
 *  - OID 2.23.133.5.4.1 (tcg-dice-TcbInfo) on Hopper GPUs and LS10 NVSwitches, holding
 *    SEQUENCE { INTEGER, SubjectPublicKeyInfo, FWID }, FWID = SEQUENCE { hashAlg, digest };
 *  - OID 2.23.133.5.4.1.1 on Blackwell GPUs, holding the DiceTcbInfo layout of the TCG DICE
 *    Attestation Architecture: context-tagged fields, [6] being a SEQUENCE OF FWID.
 * The digest is the same value the GPU reports in its opaque data (field 20), which lets the
 * verifier tie the signing key to the firmware that reported the measurements.
 */
import { AttestdError } from '../../base/errors.js';
import { Der, TAG, type DerNode } from '../der.js';
import type { Certificate } from './x509.js';

export const OID_DICE_TCB_INFO = '2.23.133.5.4.1';
export const OID_DICE_TCB_INFO_BLACKWELL = '2.23.133.5.4.1.1';
const OID_SHA384 = '2.16.840.1.101.3.4.2.2';
const MAX_FWIDS = 8;

export interface Fwid {
  /** Hash algorithm OID; 2.16.840.1.101.3.4.2.2 is SHA-384. */
  hashAlg: string;
  digestHex: string;
}

export interface DiceTcbInfo {
  /** Which extension the values came from. */
  oid: string;
  fwids: Fwid[];
  vendor?: string;
  model?: string;
  svn?: number;
}

function fwidOf(d: Der<Buffer>, node: DerNode): Fwid {
  const [alg, digest, ...extra] = d.children(d.expect(node, TAG.SEQUENCE, 'FWID'));
  if (!alg || !digest || extra.length > 0) d.fail('an FWID is not { hashAlg, digest }');
  const hashAlg = d.oid(alg);
  const bytes = d.content(d.expect(digest, TAG.OCTET_STRING, 'FWID digest'));
  if (hashAlg === OID_SHA384 && bytes.length !== 48) d.fail('a SHA-384 FWID is not 48 bytes');
  if (bytes.length === 0 || bytes.length > 64) d.fail('an FWID digest has a bad length');
  return { hashAlg, digestHex: bytes.toString('hex') };
}

function parseHopperLayout(d: Der<Buffer>, items: DerNode[], oid: string): DiceTcbInfo {
  const [version, spki, fwid, ...extra] = items;
  if (!version || !spki || !fwid || extra.length > 0) d.fail('the DICE extension is not { version, key, FWID }');
  d.smallUint(version);
  d.expect(spki, TAG.SEQUENCE, 'DICE extension key');
  return { oid, fwids: [fwidOf(d, fwid)] };
}

function parseDiceTcbInfo(d: Der<Buffer>, items: DerNode[], oid: string): DiceTcbInfo {
  const out: DiceTcbInfo = { oid, fwids: [] };
  let last = -1;
  for (const item of items) {
    if ((item.tag & 0xc0) !== 0x80) d.fail('a DiceTcbInfo field is not context-tagged');
    const field = item.tag & 0x1f;
    if (field <= last) d.fail('DiceTcbInfo fields are out of order');
    last = field;
    const text = (): string => d.content(item).toString('utf8').slice(0, 128);
    if (field === 0) out.vendor = text();
    else if (field === 1) out.model = text();
    else if (field === 3) {
      const b = d.content(item);
      if (b.length === 0 || b.length > 4) d.fail('DiceTcbInfo svn is out of range');
      out.svn = b.reduce((v, byte) => v * 256 + byte, 0);
    } else if (field === 6) {
      if (item.tag !== 0xa6) d.fail('DiceTcbInfo fwids is not constructed');
      const list = d.children(item);
      if (list.length > MAX_FWIDS) d.fail('DiceTcbInfo has too many FWIDs');
      out.fwids = list.map((n) => fwidOf(d, n));
    }
  }
  return out;
}

/**
 * The leaf's DICE TcbInfo, or undefined when it has neither extension. A present but
 * malformed extension is GPU_CERT_CHAIN_INVALID.
 */
export function diceTcbInfo(leaf: Certificate): DiceTcbInfo | undefined {
  const blackwell = leaf.extensions.get(OID_DICE_TCB_INFO_BLACKWELL);
  const hopper = leaf.extensions.get(OID_DICE_TCB_INFO);
  const value = blackwell ?? hopper;
  if (!value) return undefined;
  const oid = blackwell ? OID_DICE_TCB_INFO_BLACKWELL : OID_DICE_TCB_INFO;
  const d: Der<Buffer> = new Der(value, 'GPU_CERT_CHAIN_INVALID');
  const seq = d.expect(d.read(0), TAG.SEQUENCE, 'DICE extension');
  if (seq.end !== value.length) d.fail('the DICE extension has trailing bytes');
  const items = d.children(seq);
  try {
    return items[0]?.tag === TAG.INTEGER ? parseHopperLayout(d, items, oid) : parseDiceTcbInfo(d, items, oid);
  } catch (err) {
    if (err instanceof AttestdError) throw new AttestdError(err.code, `leaf ${oid}: ${err.message}`, { cause: err });
    throw err;
  }
}

/**
 * The report's FWID (opaque field 20), when it states one, must be one the leaf carries:
 * the key that signed is then the key of the firmware that measured. Returns a detail line.
 */
export function matchReportFwid(reportFwidHex: string | undefined, dice: DiceTcbInfo | undefined): string {
  if (reportFwidHex === undefined) return dice ? 'the report states no FWID; the leaf carries one' : 'neither the report nor the leaf has an FWID';
  if (!dice) throw new AttestdError('GPU_CERT_CHAIN_INVALID', 'the report states an FWID but the leaf has no DICE FWID extension');
  if (!dice.fwids.some((f) => f.digestHex === reportFwidHex)) {
    throw new AttestdError('GPU_CERT_CHAIN_INVALID', `the report FWID ${reportFwidHex} is not the leaf's (${dice.fwids.map((f) => f.digestHex).join(', ')})`);
  }
  return `the leaf's ${dice.oid} FWID matches the report`;
}
