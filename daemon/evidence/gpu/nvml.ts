/**
 * The NVML binding: the only place that loads libnvidia-ml.so.1 through koffi.
 *
 * Every NVML call runs on a koffi worker thread (`.async`), never on the event loop, and all
 * calls on one library go through one queue, one session (nvmlInit_v2 … nvmlShutdown) at a
 * time. Memory handed to NVML comes from koffi.alloc (stable native addresses) and is freed
 * when the session ends. A session has a deadline: a driver that hangs makes the session fail
 * with NVML_CALL_FAILED, and later sessions queue behind the stuck call and fail the same way,
 * which is the fail-closed outcome. Never used on the lease path.
 *
 * Functions that older drivers lack (CUDA version, confidential computing, attestation) are
 * bound lazily; a missing one reads as "not supported", like NVML_ERROR_NOT_SUPPORTED.
 */
import { basename } from 'node:path';
import koffi, { type LibraryHandle } from 'koffi';
import { AttestdError } from '../../base/errors.js';
import { SerialQueue } from '../../base/serial-queue.js';
import { NVML_SUCCESS, nvmlReturnName } from './nvml-return.js';
import { OPTIONAL, REQUIRED, run, type Fns, type NvmlSession } from './nvml-functions.js';
import { makeSession } from './nvml-session.js';

export const DEFAULT_NVML_LIBRARY = 'libnvidia-ml.so.1';
export const DEFAULT_NVML_TIMEOUT_MS = 30_000;
export { CC_NONCE_BYTES } from './nvml-session.js';
export type { DeviceHandle, DeviceMode, DeviceString, NvmlSession } from './nvml-functions.js';

function loadLibrary(path: string): { lib: LibraryHandle; fns: Fns } {
  const name = basename(path);
  let lib: LibraryHandle;
  try {
    lib = koffi.load(path);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const missing = /No such file|cannot open shared object/.test(msg);
    throw new AttestdError('NVML_UNAVAILABLE', missing ? `${name} not found` : `${name} could not be loaded: ${msg}`,
      { cause: err });
  }
  const fns: Partial<Fns> = {};
  for (const [key, proto] of Object.entries(REQUIRED)) {
    try {
      fns[key as keyof typeof REQUIRED] = lib.func(proto);
    } catch (err) {
      lib.unload();
      throw new AttestdError('NVML_UNAVAILABLE', `${name} lacks ${proto}`, { cause: err });
    }
  }
  for (const [key, proto] of Object.entries(OPTIONAL)) {
    try {
      fns[key as keyof typeof OPTIONAL] = lib.func(proto);
    } catch {
      // An older driver: the feature reads as not supported.
    }
  }
  return { lib, fns: fns as Fns };
}

const opened = new Map<string, Nvml>();

export class Nvml {
  private readonly queue = new SerialQueue();

  private constructor(readonly libraryPath: string, private readonly fns: Fns) {}

  /**
   * Loads the library once per path. Throws NVML_UNAVAILABLE with the message
   * "<file name> not found" when it does not exist, or naming what else went wrong.
   */
  static open(libraryPath: string = DEFAULT_NVML_LIBRARY): Nvml {
    if (typeof libraryPath !== 'string' || libraryPath === '' || libraryPath.includes('\0')) {
      throw new AttestdError('INVALID_ARGUMENT', 'libraryPath must be a non-empty string without NUL');
    }
    let nvml = opened.get(libraryPath);
    if (nvml === undefined) {
      nvml = new Nvml(libraryPath, loadLibrary(libraryPath).fns);
      opened.set(libraryPath, nvml);
    }
    return nvml;
  }

  /**
   * Runs `body` inside nvmlInit_v2 … nvmlShutdown, after every earlier session. Throws
   * NVML_UNAVAILABLE when nvmlInit_v2 fails (no driver, no GPU, no permission), and
   * NVML_CALL_FAILED when a call fails or the session outlives `timeoutMs`.
   */
  session<T>(body: (s: NvmlSession) => Promise<T>, timeoutMs = DEFAULT_NVML_TIMEOUT_MS): Promise<T> {
    const work = this.queue.run(() => this.runSession(body));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AttestdError('NVML_CALL_FAILED',
        `NVML did not answer within ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
    });
    return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
  }

  private async runSession<T>(body: (s: NvmlSession) => Promise<T>): Promise<T> {
    const rc = await run<number>(this.fns.init, []);
    if (rc !== NVML_SUCCESS) {
      throw new AttestdError('NVML_UNAVAILABLE', `nvmlInit_v2 failed: ${await this.describe(rc)}`);
    }
    const blocks: bigint[] = [];
    try {
      return await body(makeSession(this.fns, blocks, (rc) => this.describe(rc)));
    } finally {
      for (const p of blocks.splice(0)) koffi.free(p);
      await run<number>(this.fns.shutdown, []);
    }
  }

  private async describe(rc: number): Promise<string> {
    const text = await run<unknown>(this.fns.errorString, [rc]).catch(() => undefined);
    return `${nvmlReturnName(rc)} (${rc})${typeof text === 'string' && text !== '' ? `: ${text.slice(0, 200)}` : ''}`;
  }
}
