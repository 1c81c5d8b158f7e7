/**
 * A session with one TPM through ESYS: the attestation key, PCR reads and quotes.
 *
 * Every call goes through one SerialQueue, so exactly one TPM command is in flight and the
 * ESYS context is never used from two worker threads at once. Once the link to the TPM
 * fails (TPM_UNAVAILABLE) the session is spent: later calls reject at once with the same
 * code, and the owner is expected to close() it and open() a new one.
 *
 * On a TPM simulator without a resource manager, a session killed before close() leaves its
 * AK loaded; when that has filled the TPM, creating the AK flushes the leftovers and tries
 * again once (see leftovers.ts).
 */
import { AttestdError } from '../../base/errors.js';
import { encodePcrSelection, type PcrBank, type PcrSelection } from '../../verify/pcr.js';
import type { HashAlg } from '../../verify/tpm-alg.js';
import { TpmWriter } from '../../verify/tpm-reader.js';
import { akTemplate2b, matchesAkTemplate } from './ak-template.js';
import { Arena, readPtr, readU32 } from './arena.js';
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
import { ESYS_TR, loadTss, type Ptr, type Tss } from './tss.js';

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

export const MAX_QUALIFYING_DATA = 64;
/** A quote whose PCRs moved while it was taken is retried this many times. */
const QUOTE_RETRIES = 3;
/** TPM_ALG_NULL scheme: sign with the key's own scheme (ECDSA, SHA-256). */
const SIG_SCHEME_KEY_DEFAULT = Buffer.from([0x00, 0x10]);
/** TPM2B_SENSITIVE_CREATE with empty userAuth and data. */
const EMPTY_SENSITIVE = Buffer.from([0x00, 0x04, 0x00, 0x00, 0x00, 0x00]);
const EMPTY_DATA = Buffer.from([0x00, 0x00]);
const EMPTY_PCR_SELECTION = Buffer.from([0x00, 0x00, 0x00, 0x00]);

interface AttestationKey {
  handle: number;
  publicArea: Buffer;
}

export class Tpm {
  private readonly queue = new SerialQueue();
  private ak: AttestationKey | null = null;
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
  ) {}

  /** Connects through the TCTI loader and starts an ESYS context. */
  static async open(tcti: string): Promise<Tpm> {
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
      return new Tpm(tss, slots, tctiSlot, ctxSlot, ctx, parsed.name);
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

  private async ensureAk(): Promise<AttestationKey> {
    if (this.ak !== null) return this.ak;
    let made = await this.createAk();
    let note = '';
    if (made === TPM_RC_OBJECT_MEMORY && mayFlushLeftovers(this.transport)) {
      const recovery = await recoverObjectMemory(this.tss, this.ctx);
      note = recovery.note;
      if (recovery.retry) made = await this.createAk();
    }
    if (typeof made === 'number') {
      const err = rcError('Esys_CreatePrimary(AK)', made, this.tss.decodeRc);
      throw note === '' ? err : new AttestdError(err.code, `${err.message} (${note})`);
    }
    this.ak = made;
    return made;
  }

  /** One TPM2_CreatePrimary of the AK: the key, or the response code when the TPM refused. */
  private async createAk(): Promise<AttestationKey | number> {
    const arena = new Arena(this.tss);
    try {
      const inSensitive = arena.input('TPM2B_SENSITIVE_CREATE', EMPTY_SENSITIVE);
      const inPublic = arena.input('TPM2B_PUBLIC', akTemplate2b());
      const outsideInfo = arena.input('TPM2B_DATA', EMPTY_DATA);
      const creationPcr = arena.input('TPML_PCR_SELECTION', EMPTY_PCR_SELECTION);
      const outs = {
        handle: arena.value(),
        outPublic: arena.output(),
        creationData: arena.output(),
        creationHash: arena.output(),
        creationTicket: arena.output(),
      };
      const rc = await sendCommand(() =>
        this.tss.createPrimary(this.ctx, ESYS_TR.RH_ENDORSEMENT, inSensitive, inPublic, outsideInfo, creationPcr, outs),
      );
      if (rc !== 0) return rc;
      const handle = readU32(outs.handle);
      try {
        const publicArea = unwrap2b(arena.take(outs.outPublic, 'TPM2B_PUBLIC'), 'TPM2B_PUBLIC');
        if (!matchesAkTemplate(publicArea)) {
          throw new AttestdError('TPM_COMMAND_FAILED', 'the TPM created an AK that does not match its template');
        }
        return { handle, publicArea };
      } catch (err) {
        await this.tss.flushContext(this.ctx, handle).catch(() => 0);
        throw err;
      }
    } finally {
      arena.release();
    }
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

/** The contents of a marshalled TPM2B whose size field must cover exactly the rest. */
function unwrap2b(bytes: Buffer | null, what: string): Buffer {
  if (bytes === null || bytes.length < 2 || bytes.readUInt16BE(0) !== bytes.length - 2) {
    throw new AttestdError('TPM_COMMAND_FAILED', `ESYS returned a malformed ${what}`);
  }
  return Buffer.from(bytes.subarray(2));
}
