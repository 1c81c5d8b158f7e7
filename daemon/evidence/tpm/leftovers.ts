/**
 * Transient objects left in the TPM by sessions that died without flushing them.
 *
 * Behind a resource manager (/dev/tpmrm0, tabrmd) the kernel or the RM flushes a client's
 * objects when its connection closes. Talking to a TPM simulator directly (swtpm, mssim),
 * nothing does: a daemon killed with SIGKILL leaves its AK loaded, and once the TPM's few
 * object slots are taken, every later CreatePrimary answers TPM_RC_OBJECT_MEMORY and the host
 * stays untrusted for good. Without a resource manager the TPM cannot be shared between
 * live clients anyway, so what fills it belongs to sessions that are over; flushing all of
 * it is the recovery. Behind a resource manager other clients' objects are invisible and
 * TPM_RC_OBJECT_MEMORY is a real error, so nothing is flushed there.
 */
import { AttestdError } from '../../base/errors.js';
import { Arena, readU32 } from './arena.js';
import { rcError } from './rc.js';
import type { TctiConfig } from './tcti.js';
import { hex, MAX_TRANSIENT_HANDLES, parseTransientHandles, TPM_CAP_HANDLES, TRANSIENT_FIRST } from './transient-handles.js';
import type { Ptr, Tss } from './tss.js';

/** TPM_RC_OBJECT_MEMORY: out of memory for object contexts (TPM 2.0 Part 2, 6.6.3). */
export const TPM_RC_OBJECT_MEMORY = 0x902;

export interface FlushReport {
  /** Transient objects the TPM listed. */
  found: number;
  flushed: number;
  /** One message for each object that could not be flushed. */
  failures: string[];
}

/**
 * Whether a full TPM on this transport may be recovered by flushing leftovers: only the
 * simulator transports, which have no resource manager in front of them. A device may be
 * the kernel's resource manager (/dev/tpmrm0), and tabrmd is one.
 */
export function mayFlushLeftovers(transport: TctiConfig['name']): boolean {
  return transport === 'swtpm' || transport === 'mssim';
}

/**
 * Flushes every transient object the TPM lists (at most MAX_TRANSIENT_HANDLES; flushing
 * any one frees a slot). Throws TPM_UNAVAILABLE when the link breaks, and TPM_COMMAND_FAILED
 * when the list cannot be read; an object that cannot be flushed is reported, not thrown.
 * Must run inside the caller's one-command-at-a-time queue, and only while the caller holds
 * no transient object of its own.
 */
export async function flushLeftovers(tss: Tss, ctx: Ptr): Promise<FlushReport> {
  const handles = await listTransients(tss, ctx);
  const report: FlushReport = { found: handles.length, flushed: 0, failures: [] };
  const arena = new Arena(tss);
  try {
    const slot = arena.value();
    for (const handle of handles) {
      const rc = await tss.trFromTpmPublic(ctx, handle, slot);
      if (rc !== 0) {
        note(report, rcError(`Esys_TR_FromTPMPublic(0x${hex(handle)})`, rc, tss.decodeRc));
        continue;
      }
      const frc = await tss.flushContext(ctx, readU32(slot));
      if (frc !== 0) {
        note(report, rcError(`Esys_FlushContext(0x${hex(handle)})`, frc, tss.decodeRc));
        continue;
      }
      report.flushed++;
    }
    return report;
  } finally {
    arena.release();
  }
}

/**
 * flushLeftovers for a caller that got TPM_RC_OBJECT_MEMORY: a note for its error message,
 * and whether trying again can help (something was flushed). A list the TPM would not give
 * becomes the note; a broken link (TPM_UNAVAILABLE) is thrown.
 */
export async function recoverObjectMemory(tss: Tss, ctx: Ptr): Promise<{ note: string; retry: boolean }> {
  try {
    const report = await flushLeftovers(tss, ctx);
    return { note: describeFlush(report), retry: report.flushed > 0 };
  } catch (err) {
    if (!(err instanceof AttestdError) || err.code !== 'TPM_COMMAND_FAILED') throw err;
    return { note: `no leftovers flushed: ${err.message}`, retry: false };
  }
}

/** "flushed 2 of 3 transient objects left by earlier sessions; <failure>; ..." */
export function describeFlush(report: FlushReport): string {
  const head = `flushed ${report.flushed} of ${report.found} transient objects left by earlier sessions`;
  return [head, ...report.failures].join('; ');
}

async function listTransients(tss: Tss, ctx: Ptr): Promise<number[]> {
  const arena = new Arena(tss);
  try {
    const moreData = arena.value();
    const capabilityData = arena.output();
    const rc = await tss.getCapability(ctx, TPM_CAP_HANDLES, TRANSIENT_FIRST, MAX_TRANSIENT_HANDLES, {
      moreData,
      capabilityData,
    });
    if (rc !== 0) throw rcError('Esys_GetCapability(handles-transient)', rc, tss.decodeRc);
    const bytes = arena.take(capabilityData, 'TPMS_CAPABILITY_DATA');
    if (bytes === null) throw new AttestdError('TPM_COMMAND_FAILED', 'Esys_GetCapability returned no data');
    return parseTransientHandles(bytes);
  } finally {
    arena.release();
  }
}

function note(report: FlushReport, err: AttestdError): void {
  if (err.code === 'TPM_UNAVAILABLE') throw err;
  report.failures.push(err.message);
}
