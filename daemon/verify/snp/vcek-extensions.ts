/**
 * The AMD-specific X.509 extensions of VCEK and VLEK certificates (arc 1.3.6.1.4.1.3704.1):
 * the TCB the key was derived for, the product, and the chip (VCEK) or cloud provider
 * (VLEK) it belongs to. Each SPL is a DER INTEGER inside extnValue; the product name and
 * CSP id are IA5Strings. hwID comes in two encodings: the raw chip id as the extnValue
 * content (older certificates), or that content wrapped once more in an OCTET STRING.
 */
import { Asn1Reader, TAG, type Asn1Node } from '../x509/asn1.js';
import { memo } from '../x509/cache.js';
import type { AmdKeyExtensions } from './types.js';

const AMD = '1.3.6.1.4.1.3704.1';

export const AMD_OID = {
  STRUCT_VERSION: `${AMD}.1`,
  PRODUCT_NAME: `${AMD}.2`,
  BL_SPL: `${AMD}.3.1`,
  TEE_SPL: `${AMD}.3.2`,
  SNP_SPL: `${AMD}.3.3`,
  SPL_4: `${AMD}.3.4`,
  SPL_5: `${AMD}.3.5`,
  SPL_6: `${AMD}.3.6`,
  SPL_7: `${AMD}.3.7`,
  UCODE_SPL: `${AMD}.3.8`,
  FMC_SPL: `${AMD}.3.9`,
  HW_ID: `${AMD}.4`,
  CSP_ID: `${AMD}.5`,
} as const;

const SPL_FIELDS = [
  [AMD_OID.BL_SPL, 'bootloader'],
  [AMD_OID.TEE_SPL, 'tee'],
  [AMD_OID.SNP_SPL, 'snp'],
  [AMD_OID.SPL_4, 'spl4'],
  [AMD_OID.SPL_5, 'spl5'],
  [AMD_OID.SPL_6, 'spl6'],
  [AMD_OID.SPL_7, 'spl7'],
  [AMD_OID.UCODE_SPL, 'microcode'],
  [AMD_OID.FMC_SPL, 'fmc'],
] as const;

/** Chip ids are 64 bytes, except on Turin where KDS issues VCEKs for an 8-byte id. */
const HW_ID_LENGTHS = new Set([64, 8]);
const MAX_TEXT = 256;

const r: Asn1Reader = new Asn1Reader('SNP_CERT_CHAIN_INVALID');

/** The one DER element an extension value must be. */
function whole(value: Uint8Array, what: string): Asn1Node {
  return r.decode(value, what);
}

function spl(value: Uint8Array, what: string): number {
  const v = r.smallUint(whole(value, what), TAG.INTEGER, what);
  if (v > 0xff) r.fail(`${what} does not fit a byte`);
  return v;
}

function ia5(value: Uint8Array, what: string): string {
  const node = r.expect(whole(value, what), TAG.IA5_STRING, what);
  if (r.content(node).length > MAX_TEXT) r.fail(`${what} too long`);
  return r.text(node, what);
}

function hwId(value: Uint8Array): string {
  if (HW_ID_LENGTHS.has(value.length)) return Buffer.from(value).toString('hex');
  const inner = r.content(r.expect(whole(value, 'hwID'), TAG.OCTET_STRING, 'hwID'));
  if (!HW_ID_LENGTHS.has(inner.length)) r.fail(`hwID of ${inner.length} bytes`);
  return inner.toString('hex');
}

/**
 * Reads the AMD extensions out of a certificate's extension map (x509/certificate.ts), once
 * per map: the cached certificate of a VCEK seen before costs nothing here either.
 * Absent extensions are absent in the result; the verifier decides which it needs.
 */
export function parseAmdExtensions(extensions: ReadonlyMap<string, Uint8Array>): AmdKeyExtensions {
  // A copy each time: what a caller does with its result must not reach the next caller.
  return { ...memo(extensions, 'amd-extensions', () => readAmdExtensions(extensions)) };
}

function readAmdExtensions(extensions: ReadonlyMap<string, Uint8Array>): AmdKeyExtensions {
  const out: AmdKeyExtensions = {};
  const version = extensions.get(AMD_OID.STRUCT_VERSION);
  if (version) out.structVersion = spl(version, 'structVersion');
  const product = extensions.get(AMD_OID.PRODUCT_NAME);
  if (product) out.productName = ia5(product, 'productName');
  for (const [oid, field] of SPL_FIELDS) {
    const value = extensions.get(oid);
    if (value) out[field] = spl(value, field);
  }
  const hw = extensions.get(AMD_OID.HW_ID);
  if (hw) out.hwId = hwId(hw);
  const csp = extensions.get(AMD_OID.CSP_ID);
  if (csp) out.cspId = ia5(csp, 'cspId');
  return out;
}
