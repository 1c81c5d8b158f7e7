/**
 * A session with one TPM through ESYS: the attestation key, PCR reads and quotes.
 *
 * Every call goes through one SerialQueue, so exactly one TPM command is in flight and the
 * ESYS context is never used from two worker threads at once. Once the link to the TPM
 * fails (TPM_UNAVAILABLE) the session is spent: later calls reject at once with the same
 * code, and the owner is expected to close() it and open() a new one.
 *
 * The AK (see ak-template.ts, ak-key.ts) comes from an AkStore when one is given: created and
 * stored the first time, loaded from the store every time after. Without a store (tools and
 * tests) each session creates its own AK, whose authValue dies with the session.
 * rotateAk() replaces the stored AK by a new one the old one certifies.
 *
 * On a TPM simulator without a resource manager, a session killed before close() leaves its
 * AK loaded; when that has filled the TPM, loading the AK flushes the leftovers and tries
 * again once (see leftovers.ts).
 */
import { AttestdError } from '../../base/errors.js';
import { encodePcrSelection, type PcrBank, type PcrSelection } from '../../verify/pcr.js';
import type { HashAlg } from '../../verify/tpm-alg.js';
import { TpmWriter } from '../../verify/tpm-reader.js';
import { decodeStoredAk, encodeStoredAk } from './ak-blob.js';
import { createAk, loadAk, unwrap2b, withSrk, type LoadedAk, type Step } from './ak-key.js';
import type { AkStore } from './ak-store.js';
import { activateCredential } from './activate-credential.js';
import { certifyObject } from './certify.js';
import { akRotationQualifyingData, verifyAkRotation } from '../../verify/ak-rotation.js';
import { parseTpmtPublic } from '../../verify/tpm-public.js';
import { Arena, readPtr } from './arena.js';
import type { EkKind } from './ek-template.js';
import { MAX_IMPLEMENTED_BANKS, parseAllocatedBanks } from './banks.js';
import { getCapability, MAX_PROPERTIES, parseTpmProperties, TPM_CAP_PCRS, TPM_CAP_TPM_PROPERTIES, TPM_PT_NV_BUFFER_MAX } from './capability.js';
import { DEFAULT_NV_CHUNK, readEkCertificates, type EkCertificates } from './ek-cert.js';
import { mayFlushLeftovers, recoverObjectMemory, TPM_RC_OBJECT_MEMORY } from './leftovers.js';
import { applyPcrRead, normaliseSelections } from './pcr-read.js';
import { SerialQueue } from '../../base/serial-queue.js';
import { rcError } from './rc.js';
import { sendCommand } from './send.js';
import { stableQuote } from './stable-quote.js';
import { formatTcti, parseTcti, type TctiConfig } from './tcti.js';
import { loadTss, type Ptr, type Tss } from './tss.js';

export interface QuoteResult {
  /** TPMS_ATTEST bytes: the contents of the TPM2B_ATTEST, without its size prefix. */
  attest: Buffer;
  /** Marshalled TPMT_SIGNATURE. */
  signature: Buffer;
  /**
   * Values of exactly the quoted PCRs, in selection order, read after the quote; they
   * equal the values read before it unless the PCRs kept moving through every retry.
   */
  banks: PcrBank[];
}

export type { EkCertificates } from './ek-cert.js';

/** What an AK rotation leaves for the record: both keys and the old one's certification of the new. */
export interface AkRotationEvidence {
  /** TPMT_PUBLIC of the AK replaced. */
  oldPublic: Buffer;
  /** TPMT_PUBLIC of the new AK. */
  newPublic: Buffer;
  /** TPMS_ATTEST (TPM_ST_ATTEST_CERTIFY) of the new AK, by the old one. */
  certifyInfo: Buffer;
  /** TPMT_SIGNATURE by the old AK over certifyInfo. */
  signature: Buffer;
}

export const MAX_QUALIFYING_DATA = 64;
/** sizeof(TPMU_ENCRYPTED_SECRET) and of an ID object: bounded well below by TPM limits. */
const MAX_CREDENTIAL_PART = 1024;
/** A quote whose PCRs moved while it was taken is retried this many times. */
const QUOTE_RETRIES = 3;
/** TPM_ALG_NULL scheme: sign with the key's own scheme (ECDSA, SHA-256). */
const SIG_SCHEME_KEY_DEFAULT = Buffer.from([0x00, 0x10]);
export class Tpm {
  private readonly queue = new SerialQueue();
  private ak: LoadedAk | null = null;
  private failure: AttestdError | null = null;
  private closing: Promise<void> | null = null;
  private nvChunk: number | null = null;

  private constructor(
    private readonly tss: Tss,
    /** Owns the two slots below for the life of the session. */
    private readonly slots: Arena,
    private readonly tctiSlot: Ptr,
    private readonly ctxSlot: Ptr,
    private readonly ctx: Ptr,
    private readonly transport: TctiConfig['name'],
    private readonly akStore: AkStore | undefined,
  ) {}

  /** Connects through the TCTI loader and starts an ESYS context; the AK is kept in `akStore`. */
  static async open(tcti: string, akStore?: AkStore): Promise<Tpm> {
    const parsed = parseTcti(tcti);
    const conf = formatTcti(parsed);
    const tss = loadTss();
    const slots = new Arena(tss);
    const tctiSlot = slots.value();
    const ctxSlot = slots.value();
    try {
      const rc = await tss.tctiInitialize(conf, tctiSlot);
      if (rc !== 0) {
        const err = rcError(`Tss2_TctiLdr_Initialize(${conf})`, rc, tss.decodeRc);
        // Whatever the loader reports at this stage, no TPM is reachable through it.
        throw new AttestdError('TPM_UNAVAILABLE', err.message);
      }
      const tctiCtx = readPtr(tctiSlot);
      if (tctiCtx === null) throw new AttestdError('TPM_UNAVAILABLE', 'Tss2_TctiLdr_Initialize returned no context');
      const erc = await tss.esysInitialize(ctxSlot, tctiCtx);
      const ctx = readPtr(ctxSlot);
      if (erc !== 0 || ctx === null) {
        await tss.tctiFinalize(tctiSlot).catch(() => undefined);
        if (erc === 0) throw new AttestdError('INTERNAL', 'Esys_Initialize returned no context');
        throw rcError('Esys_Initialize', erc, tss.decodeRc);
      }
      return new Tpm(tss, slots, tctiSlot, ctxSlot, ctx, parsed.name, akStore);
    } catch (err) {
      slots.release();
      throw err;
    }
  }

  /** Marshalled TPMT_PUBLIC of the AK (no size prefix); the AK is created on first use. */
  attestationKeyPublic(): Promise<Buffer> {
    return this.exclusive(async () => Buffer.from((await this.ensureAk()).publicArea));
  }

  /**
   * The PCR banks the TPM has allocated (at least one PCR selected), in TPM_ALG_ID order;
   * hashes this code does not know are left out. Which of them get quoted is the caller's
   * choice: SHA-1 is listed when allocated but only quoted when the policy opts in.
   */
  pcrBanks(): Promise<HashAlg[]> {
    return this.exclusive(async () =>
      parseAllocatedBanks(await getCapability(this.tss, this.ctx, TPM_CAP_PCRS, 0, MAX_IMPLEMENTED_BANKS)),
    );
  }

  /**
   * The EK certificates in the TPM's NV (see ek-cert.ts), DER trimmed of padding; a missing
   * or unwritten index is simply absent. Unverified bytes: see verify/ek-cert.ts.
   */
  ekCertificates(): Promise<EkCertificates> {
    return this.exclusive(async () => readEkCertificates(this.tss, this.ctx, await this.nvReadChunk()));
  }

  /** Current values of the given PCRs of one bank. */
  async readPcrs(alg: HashAlg, pcrs: number[]): Promise<PcrBank> {
    const [sel] = normaliseSelections([{ alg, pcrs }]);
    return this.exclusive(async () => (await this.readBanks([sel as PcrSelection]))[0] as PcrBank);
  }

  /**
   * TPM2_Quote over the selected PCRs with the AK, signed with the AK's own scheme
   * (ECDSA, SHA-256), with PCR values read around it (see stable-quote.ts).
   */
  async quote(qualifyingData: Buffer, selections: { alg: HashAlg; pcrs: number[] }[]): Promise<QuoteResult> {
    if (!Buffer.isBuffer(qualifyingData) || qualifyingData.length > MAX_QUALIFYING_DATA) {
      throw new AttestdError('INVALID_ARGUMENT', `qualifying data must be a Buffer of at most ${MAX_QUALIFYING_DATA} bytes`);
    }
    const sels = normaliseSelections(selections);
    const qd = Buffer.from(qualifyingData);
    return this.exclusive(async () => {
      const ak = await this.ensureAk();
      const r = await stableQuote(
        () => this.readBanks(sels),
        () => this.quoteOnce(ak.handle, qd, sels),
        QUOTE_RETRIES,
      );
      return { attest: r.quote.attest, signature: r.quote.signature, banks: r.banks };
    });
  }

  /**
   * TPM2_ActivateCredential for the AK with the EK of `ek` (see activate-credential.ts): the
   * secret an enrolling party made for this AK's name and this TPM's EK. A credential made for
   * another AK or another EK, or altered, is refused by the TPM (TPM_COMMAND_FAILED).
   */
  activateCredential(ek: EkKind, credentialBlob: Buffer, secret: Buffer): Promise<Buffer> {
    if (!Buffer.isBuffer(credentialBlob) || !Buffer.isBuffer(secret) || credentialBlob.length > MAX_CREDENTIAL_PART || secret.length > MAX_CREDENTIAL_PART) {
      return Promise.reject(new AttestdError('INVALID_ARGUMENT', `a credential blob and secret of at most ${MAX_CREDENTIAL_PART} bytes each`));
    }
    return this.exclusive(async () => {
      const ak = await this.ensureAk();
      const got = await activateCredential(this.tss, this.ctx, ak.handle, ek, credentialBlob, secret);
      if ('rc' in got) throw rcError(got.op, got.rc, this.tss.decodeRc);
      return got.ok;
    });
  }

  /**
   * Replaces the stored AK by a new one (same template, new random authValue) that the old
   * one certifies with TPM2_Certify (see verify/ak-rotation.ts). In order: the new key is
   * created and loaded, certified by the old and the certification checked as an auditor
   * will; the new key is stored beside the old (AkStore.writeNext); `record` makes the
   * rotation durable; only then does the new key replace the old in the store, and the old is
   * flushed. A failure before `record` returns leaves the stored key as it was (a leftover
   * next key is the start's to settle, daemon/ak-rotation.ts); the session keeps the old AK.
   */
  rotateAk(record: (rotation: AkRotationEvidence) => Promise<void>): Promise<AkRotationEvidence> {
    return this.exclusive(async () => {
      const store = this.akStore;
      if (store === undefined || (await store.read()) === undefined) {
        throw new AttestdError('AK_STORE_UNUSABLE', 'there is no stored attestation key to rotate');
      }
      const old = await this.ensureAk();
      const made = await withSrk(this.tss, this.ctx, async (srk) => {
        const created = await createAk(this.tss, this.ctx, srk);
        if ('rc' in created) return created;
        const loaded = await loadAk(this.tss, this.ctx, srk, created.ok);
        return 'rc' in loaded ? loaded : { ok: { stored: created.ok, loaded: loaded.ok } };
      });
      if ('rc' in made) throw rcError(made.op, made.rc, this.tss.decodeRc);
      const next = made.ok.loaded;
      let rotation: AkRotationEvidence;
      try {
        rotation = await this.certifyNext(old, next);
        await store.writeNext(encodeStoredAk(made.ok.stored));
        await record(rotation);
        await store.commitNext();
      } catch (err) {
        await this.tss.flushContext(this.ctx, next.handle).catch(() => 0);
        throw err;
      }
      await this.tss.flushContext(this.ctx, old.handle).catch(() => 0);
      this.ak = next;
      return rotation;
    });
  }

  /** The old AK's certification of the new one, checked before anything is stored. */
  private async certifyNext(old: LoadedAk, next: LoadedAk): Promise<AkRotationEvidence> {
    const oldAk = parseTpmtPublic(old.publicArea);
    const qd = akRotationQualifyingData(oldAk.name, parseTpmtPublic(next.publicArea).name);
    const got = await certifyObject(this.tss, this.ctx, next.handle, old.handle, qd);
    if ('rc' in got) throw rcError(got.op, got.rc, this.tss.decodeRc);
    const rotation = { oldPublic: Buffer.from(old.publicArea), newPublic: Buffer.from(next.publicArea), ...got.ok };
    // The daemon records only what an auditor will accept: the TPM's answer is checked first.
    verifyAkRotation({ oldAk, newAkPublic: rotation.newPublic, certifyInfo: rotation.certifyInfo, signature: rotation.signature });
    return rotation;
  }

  /**
   * Flushes the AK and releases the context and the connection. Idempotent; on a broken
   * connection it skips the flush and returns without waiting for the TPM.
   */
  close(): Promise<void> {
    this.closing ??= this.queue.run(async () => {
      try {
        if (this.ak !== null && this.failure === null) {
          await this.tss.flushContext(this.ctx, this.ak.handle).catch(() => 0);
        }
      } finally {
        this.ak = null;
        this.failure ??= new AttestdError('TPM_UNAVAILABLE', 'the TPM session is closed');
        await this.tss.esysFinalize(this.ctxSlot).catch(() => undefined);
        await this.tss.tctiFinalize(this.tctiSlot).catch(() => undefined);
        this.slots.release();
      }
    });
    return this.closing;
  }

  private exclusive<T>(job: () => Promise<T>): Promise<T> {
    return this.queue.run(async () => {
      if (this.failure !== null) throw new AttestdError('TPM_UNAVAILABLE', this.failure.message);
      try {
        return await job();
      } catch (err) {
        if (err instanceof AttestdError && err.code === 'TPM_UNAVAILABLE') this.failure = err;
        throw err;
      }
    });
  }

  /** TPM_PT_NV_BUFFER_MAX, capped at the 1 KiB every PC-client TPM takes; asked once. */
  private async nvReadChunk(): Promise<number> {
    if (this.nvChunk !== null) return this.nvChunk;
    const props = parseTpmProperties(
      await getCapability(this.tss, this.ctx, TPM_CAP_TPM_PROPERTIES, TPM_PT_NV_BUFFER_MAX, 1),
      MAX_PROPERTIES,
    );
    const max = props.get(TPM_PT_NV_BUFFER_MAX);
    // A TPM that omits the property, or reports nonsense, gets the conservative default.
    this.nvChunk = max !== undefined && max >= 64 ? Math.min(max, DEFAULT_NV_CHUNK) : DEFAULT_NV_CHUNK;
    return this.nvChunk;
  }

  private async ensureAk(): Promise<LoadedAk> {
    if (this.ak !== null) return this.ak;
    let got = await this.loadOrCreateAk();
    let note = '';
    if ('rc' in got && got.rc === TPM_RC_OBJECT_MEMORY && mayFlushLeftovers(this.transport)) {
      const recovery = await recoverObjectMemory(this.tss, this.ctx);
      note = recovery.note;
      if (recovery.retry) got = await this.loadOrCreateAk();
    }
    if ('rc' in got) {
      const err = rcError(got.op, got.rc, this.tss.decodeRc);
      throw note === '' ? err : new AttestdError(err.code, `${err.message} (${note})`);
    }
    this.ak = got.ok;
    return got.ok;
  }

  /** The stored AK loaded, or a new one created, stored (when there is a store) and loaded. */
  private async loadOrCreateAk(): Promise<Step<LoadedAk>> {
    const bytes = await this.akStore?.read();
    const stored = bytes === undefined ? undefined : decodeStoredAk(bytes);
    return withSrk(this.tss, this.ctx, async (srk) => {
      if (stored !== undefined) {
        const loaded = await loadAk(this.tss, this.ctx, srk, stored);
        if ('rc' in loaded && loaded.rc !== TPM_RC_OBJECT_MEMORY && this.akStore) {
          const err = rcError(loaded.op, loaded.rc, this.tss.decodeRc);
          throw new AttestdError(err.code, `${err.message}: the attestation key in ${this.akStore.where} does not load ` +
            'under this TPM\'s storage root key (the TPM was cleared or replaced?)');
        }
        return loaded;
      }
      const made = await createAk(this.tss, this.ctx, srk);
      if ('rc' in made) return made;
      await this.akStore?.write(encodeStoredAk(made.ok));
      return loadAk(this.tss, this.ctx, srk, made.ok);
    });
  }

  private async readBanks(selections: PcrSelection[]): Promise<PcrBank[]> {
    const pending = selections.map((s) => ({ alg: s.alg, pcrs: [...s.pcrs] }));
    const banks: PcrBank[] = selections.map((s) => ({ alg: s.alg, values: new Map<number, Buffer>() }));
    const wanted = selections.reduce((n, s) => n + s.pcrs.length, 0);
    // Each round answers at least one PCR or fails, so this bound is never the exit.
    for (let round = 0; round <= wanted; round++) {
      const open = pending.filter((p) => p.pcrs.length > 0);
      if (open.length === 0) return banks;
      const arena = new Arena(this.tss);
      try {
        const selectionOut = arena.output();
        const values = arena.output();
        const selection = arena.input('TPML_PCR_SELECTION', encodePcrSelection(open));
        const updateCounter = arena.value();
        const rc = await sendCommand(() => this.tss.pcrRead(this.ctx, selection, { updateCounter, selectionOut, values }));
        if (rc !== 0) throw rcError('Esys_PCR_Read', rc, this.tss.decodeRc);
        const sel = arena.take(selectionOut, 'TPML_PCR_SELECTION');
        const dig = arena.take(values, 'TPML_DIGEST');
        if (sel === null || dig === null) throw new AttestdError('TPM_COMMAND_FAILED', 'Esys_PCR_Read returned no values');
        const got = applyPcrRead(sel, dig, pending, banks);
        if (got === 0) {
          const missing = open.map((p) => `${p.alg}:${p.pcrs.join(',')}`).join(' ');
          throw new AttestdError('TPM_COMMAND_FAILED', `the TPM has no values for PCRs ${missing} (bank not allocated?)`);
        }
      } finally {
        arena.release();
      }
    }
    throw new AttestdError('TPM_COMMAND_FAILED', 'PCR_Read made no progress');
  }

  private async quoteOnce(handle: number, qualifyingData: Buffer, sels: PcrSelection[]) {
    const arena = new Arena(this.tss);
    try {
      const data = arena.input('TPM2B_DATA', new TpmWriter().tpm2b(qualifyingData).finish());
      const scheme = arena.input('TPMT_SIG_SCHEME', SIG_SCHEME_KEY_DEFAULT);
      const selection = arena.input('TPML_PCR_SELECTION', encodePcrSelection(sels));
      const quoted = arena.output();
      const signature = arena.output();
      const rc = await sendCommand(() =>
        this.tss.quote(this.ctx, handle, data, scheme, selection, { quoted, signature }),
      );
      if (rc !== 0) throw rcError('Esys_Quote', rc, this.tss.decodeRc);
      const sig = arena.take(signature, 'TPMT_SIGNATURE');
      if (sig === null) throw new AttestdError('TPM_COMMAND_FAILED', 'Esys_Quote returned no signature');
      return { attest: unwrap2b(arena.take(quoted, 'TPM2B_ATTEST'), 'TPM2B_ATTEST'), signature: sig };
    } finally {
      arena.release();
    }
  }
}
