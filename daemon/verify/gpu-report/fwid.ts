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
import { Asn1Reader, TAG, type Asn1Node } from '../x509/asn1.js';
import { memo } from '../x509/cache.js';
import type { Certificate } from '../x509/certificate.js';

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

function fwidOf(r: Asn1Reader, node: Asn1Node): Fwid {
  const [alg, digest, ...extra] = r.children(r.expect(node, TAG.SEQUENCE, 'FWID'), 'FWID');
  if (!alg || !digest || extra.length > 0) r.fail('an FWID is not { hashAlg, digest }');
  const hashAlg = r.oid(alg, 'FWID hash algorithm');
  const bytes = r.content(r.expect(digest, TAG.OCTET_STRING, 'FWID digest'));
  if (hashAlg === OID_SHA384 && bytes.length !== 48) r.fail('a SHA-384 FWID is not 48 bytes');
  if (bytes.length === 0 || bytes.length > 64) r.fail('an FWID digest has a bad length');
  return { hashAlg, digestHex: bytes.toString('hex') };
}

function parseHopperLayout(r: Asn1Reader, items: Asn1Node[], oid: string): DiceTcbInfo {
  const [version, spki, fwid, ...extra] = items;
  if (!version || !spki || !fwid || extra.length > 0) r.fail('the DICE extension is not { version, key, FWID }');
  r.smallUint(version, TAG.INTEGER, 'DICE extension version');
  r.expect(spki, TAG.SEQUENCE, 'DICE extension key');
  return { oid, fwids: [fwidOf(r, fwid)] };
}

function parseDiceTcbInfo(r: Asn1Reader, items: Asn1Node[], oid: string): DiceTcbInfo {
  const out: DiceTcbInfo = { oid, fwids: [] };
  let last = -1;
  for (const item of items) {
    const tag = r.tagOf(item);
    if ((tag & 0xc0) !== 0x80) r.fail('a DiceTcbInfo field is not context-tagged');
    const field = tag & 0x1f;
    if (field <= last) r.fail('DiceTcbInfo fields are out of order');
    last = field;
    const text = (): string => r.content(item).toString('utf8').slice(0, 128);
    if (field === 0) out.vendor = text();
    else if (field === 1) out.model = text();
    else if (field === 3) {
      const b = r.content(item);
      if (b.length === 0 || b.length > 4) r.fail('DiceTcbInfo svn is out of range');
      out.svn = b.reduce((v, byte) => v * 256 + byte, 0);
    } else if (field === 6) {
      if (tag !== 0xa6) r.fail('DiceTcbInfo fwids is not constructed');
      out.fwids = r.children(item, 'DiceTcbInfo fwids', MAX_FWIDS).map((n) => fwidOf(r, n));
    }
  }
  return out;
}

/**
 * The leaf's DICE TcbInfo, or undefined when it has neither extension. A present but
 * malformed extension is GPU_CERT_CHAIN_INVALID. Decoded once per certificate.
 */
export function diceTcbInfo(leaf: Certificate): DiceTcbInfo | undefined {
  const blackwell = leaf.extensions.get(OID_DICE_TCB_INFO_BLACKWELL);
  const hopper = leaf.extensions.get(OID_DICE_TCB_INFO);
  const value = blackwell ?? hopper;
  if (!value) return undefined;
  const oid = blackwell ? OID_DICE_TCB_INFO_BLACKWELL : OID_DICE_TCB_INFO;
  // A copy each time: what a caller does with its result must not reach the next caller.
  const info = memo(leaf, 'dice-tcb-info', () => {
    try {
      const r: Asn1Reader = new Asn1Reader('GPU_CERT_CHAIN_INVALID');
      const items = r.children(r.expect(r.decode(value, 'the DICE extension'), TAG.SEQUENCE, 'the DICE extension'), 'the DICE extension');
      return items[0] && r.tagOf(items[0]) === TAG.INTEGER ? parseHopperLayout(r, items, oid) : parseDiceTcbInfo(r, items, oid);
    } catch (err) {
      if (err instanceof AttestdError) throw new AttestdError(err.code, `leaf ${oid}: ${err.message}`, { cause: err });
      throw err;
    }
  });
  return { ...info, fwids: info.fwids.map((f) => ({ ...f })) };
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
