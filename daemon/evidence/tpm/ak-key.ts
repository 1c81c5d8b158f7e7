/**
 * The TPM commands behind the attestation key: the storage root key made for the moment
 * (CreatePrimary in the owner hierarchy), the AK created under it once with a fresh random
 * authValue (Create), and loaded under it on every later start (Load), its authValue handed
 * to ESYS so that the password session of each quote carries it. The storage root key is
 * flushed as soon as the AK is loaded: it is needed for nothing else.
 *
 * Each step returns the TPM's response code instead of throwing when the TPM refuses, so the
 * caller can tell a full TPM (TPM_RC_OBJECT_MEMORY, recoverable on a simulator) from the rest.
 */
import { randomBytes } from 'node:crypto';
import { AttestdError } from '../../base/errors.js';
import { TpmWriter } from '../../verify/tpm-reader.js';
import { AK_AUTH_BYTES, type StoredAk } from './ak-blob.js';
import { akTemplate2b, matchesAkTemplate } from './ak-template.js';
import { Arena, readU32 } from './arena.js';
import { sendCommand } from './send.js';
import { srkTemplate2b } from './srk-template.js';
import { ESYS_TR, type Ptr, type Tss } from './tss.js';

const EMPTY_DATA = Buffer.from([0x00, 0x00]);
const EMPTY_PCR_SELECTION = Buffer.from([0x00, 0x00, 0x00, 0x00]);

export interface LoadedAk {
  handle: number;
  publicArea: Buffer;
}

/** What a step gives: its result, or the response code the TPM (or ESYS) refused it with. */
export type Step<T> = { ok: T } | { rc: number; op: string };

/** TPM2B_SENSITIVE_CREATE with `userAuth` and no data. */
function sensitive(userAuth: Buffer): Buffer {
  const inner = new TpmWriter().tpm2b(userAuth).tpm2b(Buffer.alloc(0)).finish();
  return new TpmWriter().tpm2b(inner).finish();
}

/** The contents of a marshalled TPM2B whose size field must cover exactly the rest. */
export function unwrap2b(bytes: Buffer | null, what: string): Buffer {
  if (bytes === null || bytes.length < 2 || bytes.readUInt16BE(0) !== bytes.length - 2) {
    throw new AttestdError('TPM_COMMAND_FAILED', `ESYS returned a malformed ${what}`);
  }
  return Buffer.from(bytes.subarray(2));
}

/**
 * Runs `job` with a primary key made from `template2b` (a TPM2B_PUBLIC) in `hierarchy`, with an
 * empty authValue, and flushes the key afterwards whatever happens. `what` names it in a refusal.
 */
export async function withPrimary<T>(tss: Tss, ctx: Ptr, hierarchy: number, template2b: Buffer, what: string,
  job: (handle: number) => Promise<Step<T>>): Promise<Step<T>> {
  const arena = new Arena(tss);
  let handle: number;
  try {
    const outs = { handle: arena.value(), outPublic: arena.output(), creationData: arena.output(), creationHash: arena.output(), creationTicket: arena.output() };
    const rc = await sendCommand(() => tss.createPrimary(ctx, hierarchy, arena.input('TPM2B_SENSITIVE_CREATE', sensitive(Buffer.alloc(0))),
      arena.input('TPM2B_PUBLIC', template2b), arena.input('TPM2B_DATA', EMPTY_DATA), arena.input('TPML_PCR_SELECTION', EMPTY_PCR_SELECTION), outs));
    if (rc !== 0) return { rc, op: `Esys_CreatePrimary(${what})` };
    handle = readU32(outs.handle);
  } finally {
    arena.release();
  }
  try {
    return await job(handle);
  } finally {
    await tss.flushContext(ctx, handle).catch(() => 0);
  }
}

/** Runs `job` with the storage root key loaded, and flushes it afterwards whatever happens. */
export function withSrk<T>(tss: Tss, ctx: Ptr, job: (srk: number) => Promise<Step<T>>): Promise<Step<T>> {
  return withPrimary(tss, ctx, ESYS_TR.RH_OWNER, srkTemplate2b(), 'storage root key', job);
}

/** A new AK under `srk`, with a fresh random authValue: the bytes to store, not yet loaded. */
export async function createAk(tss: Tss, ctx: Ptr, srk: number): Promise<Step<StoredAk>> {
  const authValue = randomBytes(AK_AUTH_BYTES);
  const arena = new Arena(tss);
  try {
    const outs = { outPrivate: arena.output(), outPublic: arena.output(), creationData: arena.output(), creationHash: arena.output(), creationTicket: arena.output() };
    const rc = await sendCommand(() => tss.create(ctx, srk, arena.input('TPM2B_SENSITIVE_CREATE', sensitive(authValue)),
      arena.input('TPM2B_PUBLIC', akTemplate2b()), arena.input('TPM2B_DATA', EMPTY_DATA), arena.input('TPML_PCR_SELECTION', EMPTY_PCR_SELECTION), outs));
    if (rc !== 0) return { rc, op: 'Esys_Create(AK)' };
    const publicArea = unwrap2b(arena.take(outs.outPublic, 'TPM2B_PUBLIC'), 'TPM2B_PUBLIC');
    if (!matchesAkTemplate(publicArea)) throw new AttestdError('TPM_COMMAND_FAILED', 'the TPM created an AK that does not match its template');
    const privateBlob = unwrap2b(arena.take(outs.outPrivate, 'TPM2B_PRIVATE'), 'TPM2B_PRIVATE');
    return { ok: { publicArea, privateBlob, authValue } };
  } finally {
    arena.release();
  }
}

/** Loads a stored AK under `srk` and gives ESYS its authValue. */
export async function loadAk(tss: Tss, ctx: Ptr, srk: number, ak: StoredAk): Promise<Step<LoadedAk>> {
  const arena = new Arena(tss);
  try {
    const slot = arena.value();
    const rc = await sendCommand(() => tss.load(ctx, srk, arena.input('TPM2B_PRIVATE', new TpmWriter().tpm2b(ak.privateBlob).finish()),
      arena.input('TPM2B_PUBLIC', new TpmWriter().tpm2b(ak.publicArea).finish()), slot));
    if (rc !== 0) return { rc, op: 'Esys_Load(AK)' };
    const handle = readU32(slot);
    const src = await tss.trSetAuth(ctx, handle, arena.input('TPM2B_AUTH', new TpmWriter().tpm2b(ak.authValue).finish()));
    if (src !== 0) {
      await tss.flushContext(ctx, handle).catch(() => 0);
      return { rc: src, op: 'Esys_TR_SetAuth(AK)' };
    }
    return { ok: { handle, publicArea: Buffer.from(ak.publicArea) } };
  } finally {
    arena.release();
  }
}
