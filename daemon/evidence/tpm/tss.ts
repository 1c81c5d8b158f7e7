/**
 * The tpm2-tss binding: the only place that loads libtss2-* through koffi.
 *
 * No TSS structure layout is declared here. Every structure crosses the boundary as
 * marshalled TPM bytes through libtss2-mu: inputs are unmarshalled into zeroed native
 * memory (see arena.ts) and handed to ESYS as opaque pointers; outputs that ESYS allocates
 * are marshalled back into bytes and released with Esys_Free. Pointers are koffi BigInts.
 *
 * ESYS calls that talk to the TPM run through koffi's `.async` on a worker thread, so the
 * event loop never blocks on the TPM. An ESYS context is not thread-safe: callers must
 * serialise every call on one context (tpm.ts does, with a queue).
 */
import koffi, { type LibraryHandle } from 'koffi';
import { AttestdError } from '../../base/errors.js';

export type Ptr = bigint;

/** ESYS_TR constants from tss2_esys.h. */
export const ESYS_TR = {
  NONE: 0xfff,
  PASSWORD: 0x0ff,
  RH_OWNER: 0x101,
  RH_ENDORSEMENT: 0x10b,
  RH_PLATFORM: 0x10c,
} as const;

/** Structures that cross the boundary; each maps to Tss2_MU_<name>_(Un)Marshal. */
export type MuType =
  | 'TPM2B_PUBLIC'
  | 'TPM2B_SENSITIVE_CREATE'
  | 'TPM2B_DATA'
  | 'TPML_PCR_SELECTION'
  | 'TPMT_SIG_SCHEME'
  | 'TPM2B_ATTEST'
  | 'TPMT_SIGNATURE'
  | 'TPML_DIGEST'
  | 'TPMS_CAPABILITY_DATA'
  | 'TPM2B_NV_PUBLIC'
  | 'TPM2B_MAX_NV_BUFFER'
  | 'TPM2B_PRIVATE'
  | 'TPM2B_AUTH'
  | 'TPMT_SYM_DEF'
  | 'TPM2B_ID_OBJECT'
  | 'TPM2B_ENCRYPTED_SECRET'
  | 'TPM2B_DIGEST';

const MU_TYPES: readonly MuType[] = [
  'TPM2B_PUBLIC',
  'TPM2B_SENSITIVE_CREATE',
  'TPM2B_DATA',
  'TPML_PCR_SELECTION',
  'TPMT_SIG_SCHEME',
  'TPM2B_ATTEST',
  'TPMT_SIGNATURE',
  'TPML_DIGEST',
  'TPMS_CAPABILITY_DATA',
  'TPM2B_NV_PUBLIC',
  'TPM2B_MAX_NV_BUFFER',
  'TPM2B_PRIVATE',
  'TPM2B_AUTH',
  'TPMT_SYM_DEF',
  'TPM2B_ID_OBJECT',
  'TPM2B_ENCRYPTED_SECRET',
  'TPM2B_DIGEST',
];

/**
 * Larger than the marshalled form of any structure in MuType (a TPM2B_PUBLIC with a 4096-bit
 * RSA modulus, and a TPMS_CAPABILITY_DATA, bounded by TPM2_MAX_CAP_BUFFER, stay under 1 KiB;
 * a TPM2B_MAX_NV_BUFFER holds at most TPM2_MAX_NV_BUFFER_SIZE, 2048 bytes, in tpm2-tss 3.x).
 */
const MARSHAL_BUFFER = 4096;

type KFn = ReturnType<LibraryHandle['func']>;

export interface Tss {
  /** Tss2_TctiLdr_Initialize(conf, &tcti); the context pointer lands in `tctiSlot`. */
  tctiInitialize(conf: string, tctiSlot: Ptr): Promise<number>;
  /** Tss2_TctiLdr_Finalize(&tcti): closes the connection; safe on a broken one. */
  tctiFinalize(tctiSlot: Ptr): Promise<void>;
  esysInitialize(ctxSlot: Ptr, tcti: Ptr): Promise<number>;
  esysFinalize(ctxSlot: Ptr): Promise<void>;
  createPrimary(ctx: Ptr, primary: number, inSensitive: Ptr, inPublic: Ptr, outsideInfo: Ptr,
    creationPcr: Ptr, outs: { handle: Ptr; outPublic: Ptr; creationData: Ptr; creationHash: Ptr; creationTicket: Ptr }): Promise<number>;
  /** Esys_Create under `parent` (a loaded ESYS_TR) with a password session: a key's private blob and public area. */
  create(ctx: Ptr, parent: number, inSensitive: Ptr, inPublic: Ptr, outsideInfo: Ptr, creationPcr: Ptr,
    outs: { outPrivate: Ptr; outPublic: Ptr; creationData: Ptr; creationHash: Ptr; creationTicket: Ptr }): Promise<number>;
  /** Esys_Load under `parent` with a password session; the new ESYS_TR lands in `objectSlot`. */
  load(ctx: Ptr, parent: number, inPrivate: Ptr, inPublic: Ptr, objectSlot: Ptr): Promise<number>;
  /** Esys_TR_SetAuth: the auth value ESYS puts in password sessions for `handle` (no TPM command). */
  trSetAuth(ctx: Ptr, handle: number, auth: Ptr): Promise<number>;
  /** Esys_StartAuthSession, unbound and unsalted, of `sessionType` (TPM2_SE_*); the ESYS_TR lands in `sessionSlot`. */
  startAuthSession(ctx: Ptr, sessionType: number, symmetric: Ptr, authHash: number, sessionSlot: Ptr): Promise<number>;
  /** Esys_PolicySecret of `authHandle` (a hierarchy, with a password session) into `policySession`. */
  policySecret(ctx: Ptr, authHandle: number, policySession: number, outs: { timeout: Ptr; ticket: Ptr }): Promise<number>;
  /**
   * Esys_ActivateCredential: `activateHandle` with a password session, `keyHandle` (the EK)
   * with `keySession`; `certInfo` receives the TPM2B_DIGEST recovered.
   */
  activateCredential(ctx: Ptr, activateHandle: number, keyHandle: number, keySession: number, credentialBlob: Ptr, secret: Ptr,
    outs: { certInfo: Ptr }): Promise<number>;
  pcrRead(ctx: Ptr, selection: Ptr, outs: { updateCounter: Ptr; selectionOut: Ptr; values: Ptr }): Promise<number>;
  quote(ctx: Ptr, signHandle: number, qualifyingData: Ptr, scheme: Ptr, selection: Ptr,
    outs: { quoted: Ptr; signature: Ptr }): Promise<number>;
  /**
   * Esys_Certify: `signHandle` signs a certification of `objectHandle`, each with a password
   * session carrying the auth value ESYS holds for it (Esys_TR_SetAuth); `certifyInfo`
   * receives a TPM2B_ATTEST, `signature` a TPMT_SIGNATURE.
   */
  certify(ctx: Ptr, objectHandle: number, signHandle: number, qualifyingData: Ptr, scheme: Ptr,
    outs: { certifyInfo: Ptr; signature: Ptr }): Promise<number>;
  flushContext(ctx: Ptr, handle: number): Promise<number>;
  /** Esys_GetCapability without sessions; `capabilityData` receives an ESYS allocation. */
  getCapability(ctx: Ptr, capability: number, property: number, count: number,
    outs: { moreData: Ptr; capabilityData: Ptr }): Promise<number>;
  /** Esys_TR_FromTPMPublic without sessions: an ESYS_TR, into `objectSlot`, for a TPM handle. */
  trFromTpmPublic(ctx: Ptr, tpmHandle: number, objectSlot: Ptr): Promise<number>;
  /** Esys_TR_Close: forgets the ESYS_TR in `objectSlot` (no TPM command; the TPM object stays). */
  trClose(ctx: Ptr, objectSlot: Ptr): Promise<number>;
  /** Esys_NV_ReadPublic without sessions; `nvPublic` receives an ESYS allocation (TPM2B_NV_PUBLIC). */
  nvReadPublic(ctx: Ptr, nvIndex: number, outs: { nvPublic: Ptr }): Promise<number>;
  /**
   * Esys_NV_Read of `size` bytes at `offset`, authorised by `authHandle` (the index itself,
   * ESYS_TR.RH_OWNER or ESYS_TR.RH_PLATFORM) with a password session and that entity's auth
   * value as ESYS knows it (empty unless set); `data` receives a TPM2B_MAX_NV_BUFFER.
   */
  nvRead(ctx: Ptr, authHandle: number, nvIndex: number, size: number, offset: number, outs: { data: Ptr }): Promise<number>;
  /** Esys_Free; null is ignored. */
  free(p: Ptr | null): void;
  /** Unmarshals exactly `bytes` into `dest` (zeroed, large enough); a leftover is a bug here. */
  unmarshal(type: MuType, bytes: Buffer, dest: Ptr): void;
  /** Marshals the native structure at `src`. */
  marshal(type: MuType, src: Ptr): Buffer;
  /** Tss2_RC_Decode: text for any TSS2_RC, for messages only. */
  decodeRc(rc: number): string;
}

let loaded: Tss | undefined;

/** Loads the libraries once; TPM_LIBRARY_MISSING when any of them cannot be loaded. */
export function loadTss(): Tss {
  loaded ??= bind();
  return loaded;
}

function open(soname: string): LibraryHandle {
  try {
    return koffi.load(soname);
  } catch (err) {
    throw new AttestdError('TPM_LIBRARY_MISSING', `cannot load ${soname}: ${(err as Error).message}`, { cause: err });
  }
}

function call(fn: KFn, args: unknown[]): Promise<number> {
  return new Promise((resolve, reject) => {
    fn.async(...args, (err: unknown, rc: number) => {
      if (err) reject(new AttestdError('INTERNAL', `koffi call ${fn.info.name} failed`, { cause: err }));
      else resolve(rc >>> 0);
    });
  });
}

function bind(): Tss {
  // tpm2-tss prints its own errors to stderr unless told otherwise; ours carry the same
  // information in AttestdError messages, so its logging stays off unless an operator asks.
  process.env.TSS2_LOG ??= 'all+none';

  const tctildr = open('libtss2-tctildr.so.0');
  const tctiInit = tctildr.func('uint32_t Tss2_TctiLdr_Initialize(const char *conf, void *tctiSlot)');
  const tctiFini = tctildr.func('void Tss2_TctiLdr_Finalize(void *tctiSlot)');
  const rcDecode = open('libtss2-rc.so.0').func('const char *Tss2_RC_Decode(uint32_t rc)');
  const decodeRc = (rc: number): string => {
    const text: unknown = rcDecode(rc >>> 0);
    return typeof text === 'string' ? text : 'unknown response code';
  };
  return {
    tctiInitialize: (conf, tctiSlot) => call(tctiInit, [conf, tctiSlot]),
    tctiFinalize: async (tctiSlot) => {
      await call(tctiFini, [tctiSlot]);
    },
    ...bindEsys(open('libtss2-esys.so.0')),
    ...bindMarshalling(open('libtss2-mu.so.0'), decodeRc),
    decodeRc,
  };
}

/** The ESYS calls the daemon makes, each without sessions beyond a password where it needs one. */
function bindEsys(esys: LibraryHandle): Omit<Tss, 'tctiInitialize' | 'tctiFinalize' | 'unmarshal' | 'marshal' | 'decodeRc'> {
  const f = (proto: string) => esys.func(proto);
  const esysInit = f('uint32_t Esys_Initialize(void *ctxSlot, void *tcti, void *abiVersion)');
  const esysFini = f('void Esys_Finalize(void *ctxSlot)');
  const createPrimary = f('uint32_t Esys_CreatePrimary(void *ctx, uint32_t primary, uint32_t s1, uint32_t s2, uint32_t s3, ' +
    'void *inSensitive, void *inPublic, void *outsideInfo, void *creationPcr, void *handleOut, ' +
    'void *outPublic, void *creationData, void *creationHash, void *creationTicket)');
  const create = f('uint32_t Esys_Create(void *ctx, uint32_t parent, uint32_t s1, uint32_t s2, uint32_t s3, ' +
    'void *inSensitive, void *inPublic, void *outsideInfo, void *creationPcr, void *outPrivate, ' +
    'void *outPublic, void *creationData, void *creationHash, void *creationTicket)');
  const load = f('uint32_t Esys_Load(void *ctx, uint32_t parent, uint32_t s1, uint32_t s2, uint32_t s3, ' +
    'void *inPrivate, void *inPublic, void *objectHandle)');
  const trSetAuth = f('uint32_t Esys_TR_SetAuth(void *ctx, uint32_t handle, void *authValue)');
  const startAuthSession = f('uint32_t Esys_StartAuthSession(void *ctx, uint32_t tpmKey, uint32_t bind, uint32_t s1, uint32_t s2, ' +
    'uint32_t s3, void *nonceCaller, int sessionType, void *symmetric, uint16_t authHash, void *sessionHandle)');
  const policySecret = f('uint32_t Esys_PolicySecret(void *ctx, uint32_t authHandle, uint32_t policySession, uint32_t s1, uint32_t s2, ' +
    'uint32_t s3, void *nonceTPM, void *cpHashA, void *policyRef, int32_t expiration, void *timeout, void *policyTicket)');
  const activateCredential = f('uint32_t Esys_ActivateCredential(void *ctx, uint32_t activateHandle, uint32_t keyHandle, ' +
    'uint32_t s1, uint32_t s2, uint32_t s3, void *credentialBlob, void *secret, void *certInfo)');
  const pcrRead = f('uint32_t Esys_PCR_Read(void *ctx, uint32_t s1, uint32_t s2, uint32_t s3, void *selection, ' +
    'void *updateCounter, void *selectionOut, void *values)');
  const quote = f('uint32_t Esys_Quote(void *ctx, uint32_t signHandle, uint32_t s1, uint32_t s2, uint32_t s3, ' +
    'void *qualifyingData, void *scheme, void *selection, void *quoted, void *signature)');
  const certify = f('uint32_t Esys_Certify(void *ctx, uint32_t objectHandle, uint32_t signHandle, uint32_t s1, uint32_t s2, ' +
    'uint32_t s3, void *qualifyingData, void *inScheme, void *certifyInfo, void *signature)');
  const flush = f('uint32_t Esys_FlushContext(void *ctx, uint32_t handle)');
  const getCapability = f('uint32_t Esys_GetCapability(void *ctx, uint32_t s1, uint32_t s2, uint32_t s3, uint32_t capability, ' +
    'uint32_t property, uint32_t propertyCount, void *moreData, void *capabilityData)');
  const trFromTpmPublic = f('uint32_t Esys_TR_FromTPMPublic(void *ctx, uint32_t tpmHandle, uint32_t s1, uint32_t s2, uint32_t s3, void *object)');
  const trClose = f('uint32_t Esys_TR_Close(void *ctx, void *object)');
  const nvReadPublic = f('uint32_t Esys_NV_ReadPublic(void *ctx, uint32_t nvIndex, uint32_t s1, uint32_t s2, uint32_t s3, ' +
    'void *nvPublic, void *nvName)');
  const nvRead = f('uint32_t Esys_NV_Read(void *ctx, uint32_t authHandle, uint32_t nvIndex, uint32_t s1, uint32_t s2, uint32_t s3, ' +
    'uint16_t size, uint16_t offset, void *data)');
  const esysFree = f('void Esys_Free(void *p)');
  const { NONE, PASSWORD } = ESYS_TR;
  return {
    esysInitialize: (ctxSlot, tcti) => call(esysInit, [ctxSlot, tcti, null]),
    esysFinalize: async (ctxSlot) => {
      await call(esysFini, [ctxSlot]);
    },
    createPrimary: (ctx, primary, inSensitive, inPublic, outsideInfo, creationPcr, o) =>
      call(createPrimary, [ctx, primary, PASSWORD, NONE, NONE, inSensitive, inPublic, outsideInfo, creationPcr,
        o.handle, o.outPublic, o.creationData, o.creationHash, o.creationTicket]),
    create: (ctx, parent, inSensitive, inPublic, outsideInfo, creationPcr, o) =>
      call(create, [ctx, parent, PASSWORD, NONE, NONE, inSensitive, inPublic, outsideInfo, creationPcr,
        o.outPrivate, o.outPublic, o.creationData, o.creationHash, o.creationTicket]),
    load: (ctx, parent, inPrivate, inPublic, objectSlot) => call(load, [ctx, parent, PASSWORD, NONE, NONE, inPrivate, inPublic, objectSlot]),
    trSetAuth: (ctx, handle, auth) => call(trSetAuth, [ctx, handle, auth]),
    startAuthSession: (ctx, sessionType, symmetric, authHash, slot) =>
      call(startAuthSession, [ctx, NONE, NONE, NONE, NONE, NONE, null, sessionType, symmetric, authHash, slot]),
    policySecret: (ctx, authHandle, policySession, o) =>
      call(policySecret, [ctx, authHandle, policySession, PASSWORD, NONE, NONE, null, null, null, 0, o.timeout, o.ticket]),
    activateCredential: (ctx, activateHandle, keyHandle, keySession, credentialBlob, secret, o) =>
      call(activateCredential, [ctx, activateHandle, keyHandle, PASSWORD, keySession, NONE, credentialBlob, secret, o.certInfo]),
    pcrRead: (ctx, selection, o) => call(pcrRead, [ctx, NONE, NONE, NONE, selection, o.updateCounter, o.selectionOut, o.values]),
    quote: (ctx, signHandle, qualifyingData, scheme, selection, o) =>
      call(quote, [ctx, signHandle, PASSWORD, NONE, NONE, qualifyingData, scheme, selection, o.quoted, o.signature]),
    certify: (ctx, objectHandle, signHandle, qualifyingData, scheme, o) =>
      call(certify, [ctx, objectHandle, signHandle, PASSWORD, PASSWORD, NONE, qualifyingData, scheme, o.certifyInfo, o.signature]),
    flushContext: (ctx, handle) => call(flush, [ctx, handle]),
    getCapability: (ctx, capability, property, count, o) =>
      call(getCapability, [ctx, NONE, NONE, NONE, capability, property, count, o.moreData, o.capabilityData]),
    trFromTpmPublic: (ctx, tpmHandle, objectSlot) => call(trFromTpmPublic, [ctx, tpmHandle, NONE, NONE, NONE, objectSlot]),
    trClose: (ctx, objectSlot) => call(trClose, [ctx, objectSlot]),
    // The name output is optional in ESYS; NV_ReadPublic itself checks it against the ESYS_TR.
    nvReadPublic: (ctx, nvIndex, o) => call(nvReadPublic, [ctx, nvIndex, NONE, NONE, NONE, o.nvPublic, null]),
    nvRead: (ctx, authHandle, nvIndex, size, offset, o) =>
      call(nvRead, [ctx, authHandle, nvIndex, PASSWORD, NONE, NONE, size, offset, o.data]),
    free: (p) => {
      if (p !== null && p !== 0n) esysFree(p);
    },
  };
}

/** Tss2_MU_<type>_(Un)Marshal for every type in MuType: TPM byte formats to native structures and back. */
function bindMarshalling(mu: LibraryHandle, decodeRc: (rc: number) => string): Pick<Tss, 'unmarshal' | 'marshal'> {
  const unmarshalFns = new Map<MuType, KFn>();
  const marshalFns = new Map<MuType, KFn>();
  for (const t of MU_TYPES) {
    unmarshalFns.set(t, mu.func(`uint32_t Tss2_MU_${t}_Unmarshal(const uint8_t *buf, size_t size, _Inout_ size_t *offset, void *dest)`));
    marshalFns.set(t, mu.func(`uint32_t Tss2_MU_${t}_Marshal(void *src, _Out_ uint8_t *buf, size_t size, _Inout_ size_t *offset)`));
  }
  return {
    unmarshal: (type, bytes, dest) => {
      const offset = [0];
      const rc = (unmarshalFns.get(type) as KFn)(bytes, bytes.length, offset, dest) as number;
      if (rc !== 0 || Number(offset[0]) !== bytes.length) {
        throw new AttestdError('INTERNAL', `cannot unmarshal ${type}: ${decodeRc(rc)}, ${offset[0]}/${bytes.length} bytes`);
      }
    },
    marshal: (type, src) => {
      const out = Buffer.alloc(MARSHAL_BUFFER);
      const offset = [0];
      const rc = (marshalFns.get(type) as KFn)(src, out, out.length, offset) as number;
      if (rc !== 0) throw new AttestdError('INTERNAL', `cannot marshal ${type}: ${decodeRc(rc)}`);
      return Buffer.from(out.subarray(0, Number(offset[0])));
    },
  };
}
