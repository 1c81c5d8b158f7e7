/**
 * The stored attestation key: what the daemon keeps so that it loads the same AK after every
 * restart. The file holds the AK's TPM2B_PUBLIC, its TPM2B_PRIVATE (the private part wrapped
 * by the storage root key: it never leaves the TPM in the clear) and the 32-byte authValue
 * every use of the key needs. Read back from disk, so decoded as hostile bytes: every size is
 * bounded, the public area must carry the AK template, and nothing may follow the last field.
 *
 *   u32 magic "ATAK" | u32 version 1 | TPM2B public | TPM2B private | TPM2B authValue
 */
import { AttestdError } from '../../base/errors.js';
import { ByteReader } from '../../verify/bytes/reader.js';
import { TpmWriter } from '../../verify/tpm-reader.js';
import { matchesAkTemplate } from './ak-template.js';

const MAGIC = 0x4154414b;
const VERSION = 1;
/** sizeof(TPMT_PUBLIC) and sizeof(_PRIVATE) in tpm2-tss 3.x bound what a TPM can hand out. */
const MAX_PUBLIC = 1024;
const MAX_PRIVATE = 1024;
export const AK_AUTH_BYTES = 32;

export interface StoredAk {
  /** TPMT_PUBLIC, without its size prefix. */
  publicArea: Buffer;
  /** TPM2B_PRIVATE contents, without the size prefix. */
  privateBlob: Buffer;
  authValue: Buffer;
}

export function encodeStoredAk(ak: StoredAk): Buffer {
  return new TpmWriter().u32(MAGIC).u32(VERSION).tpm2b(ak.publicArea).tpm2b(ak.privateBlob).tpm2b(ak.authValue).finish();
}

/** Decodes a stored AK; AK_STORE_UNUSABLE names what is wrong. */
export function decodeStoredAk(bytes: Uint8Array): StoredAk {
  const r = new ByteReader(bytes, 'be', 'AK_STORE_UNUSABLE');
  if (r.u32('magic') !== MAGIC) r.fail('not a stored attestd attestation key (bad magic)');
  const version = r.u32('version');
  if (version !== VERSION) r.fail(`stored attestation key version ${version}, expected ${VERSION}`);
  const sized = (max: number, what: string): Buffer => {
    const n = r.u16(`${what} size`);
    if (n > max) r.fail(`${what}: size ${n} exceeds ${max}`);
    return Buffer.from(r.bytes(n, what));
  };
  const publicArea = sized(MAX_PUBLIC, 'public area');
  const privateBlob = sized(MAX_PRIVATE, 'private blob');
  const authValue = sized(AK_AUTH_BYTES, 'authValue');
  r.end('stored attestation key');
  if (authValue.length !== AK_AUTH_BYTES) r.fail(`authValue is ${authValue.length} bytes, expected ${AK_AUTH_BYTES}`);
  if (privateBlob.length === 0) r.fail('the private blob is empty');
  if (!matchesAkTemplate(publicArea)) {
    throw new AttestdError('AK_STORE_UNUSABLE', 'the stored public area is not an attestd attestation key (template mismatch)');
  }
  return { publicArea, privateBlob, authValue };
}
