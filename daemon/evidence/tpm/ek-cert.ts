/**
 * Endorsement key certificates as the TPM manufacturer (or the hypervisor, for a vTPM) left
 * them in NV, at the indices the TCG EK Credential Profile for TPM 2.0 assigns:
 * the RSA 2048 certificate at 0x01c00002, the ECC NIST P-256 one at 0x01c0000a and, in the
 * newer range, ECC NIST P-384 at 0x01c00016 (swtpm writes its ECC EK certificate there).
 *
 * Nothing here trusts the bytes: they are only read and trimmed. Whether a certificate chains
 * to a TPM vendor CA is for verify/ek-cert.ts.
 */
import { readNvIndex } from './nv.js';
import type { Ptr, Tss } from './tss.js';

export const EK_CERT_INDEX = {
  rsa: 0x01c00002,
  ecc: 0x01c0000a,
  eccP384: 0x01c00016,
} as const;

export interface EkCertificates {
  /** DER of the RSA 2048 EK certificate (0x01c00002). */
  rsa?: Buffer;
  /** DER of the ECC NIST P-256 EK certificate (0x01c0000a). */
  ecc?: Buffer;
  /** DER of the ECC NIST P-384 EK certificate (0x01c00016). */
  eccP384?: Buffer;
}

/** An EK certificate index larger than this is not a certificate (TPM NV indices top out near 2 KiB). */
export const MAX_EK_CERT_BYTES = 4096;
/** The chunk size when the TPM does not say: TPM_PT_NV_BUFFER_MAX is at least this on PC-client TPMs. */
export const DEFAULT_NV_CHUNK = 1024;

/**
 * Reads every EK certificate index; an index that is missing or unwritten is left out. Must
 * run inside the caller's one-command-at-a-time queue.
 */
export async function readEkCertificates(tss: Tss, ctx: Ptr, chunk: number): Promise<EkCertificates> {
  const out: EkCertificates = {};
  for (const [key, index] of Object.entries(EK_CERT_INDEX) as [keyof EkCertificates, number][]) {
    const bytes = await readNvIndex(tss, ctx, index, { maxSize: MAX_EK_CERT_BYTES, chunk });
    if (bytes !== undefined) out[key] = trimDer(bytes);
  }
  return out;
}

/**
 * The DER element at the start of `bytes`, without what follows it: some manufacturers store
 * a certificate in an index larger than the certificate and pad the rest (zeros or 0xff).
 * Bytes that do not start with a definite-length SEQUENCE that fits are returned unchanged,
 * so a verifier sees them as they are and refuses them there.
 */
export function trimDer(bytes: Buffer): Buffer {
  const length = derElementLength(bytes);
  return length === undefined || length === bytes.length ? bytes : Buffer.from(bytes.subarray(0, length));
}

/** Header plus content length of a leading SEQUENCE, or undefined if there is none that fits. */
export function derElementLength(bytes: Uint8Array): number | undefined {
  if (bytes.length < 2 || bytes[0] !== 0x30) return undefined;
  const first = bytes[1] as number;
  if (first < 0x80) return 2 + first <= bytes.length ? 2 + first : undefined;
  const n = first & 0x7f;
  // No certificate needs more than a 4-byte length; 0 would be the BER indefinite form.
  if (n === 0 || n > 4 || bytes.length < 2 + n) return undefined;
  let length = 0;
  for (let i = 0; i < n; i++) length = length * 256 + (bytes[2 + i] as number);
  const total = 2 + n + length;
  return total <= bytes.length ? total : undefined;
}
