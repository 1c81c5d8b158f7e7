/**
 * Confidential-VM reports through the kernel's configfs-tsm interface
 * (Documentation/ABI/testing/configfs-tsm): make an entry under report/, write 64 bytes of
 * report data to `inblob`, read `outblob` (the report or quote), `auxblob` (SEV-SNP
 * certificate table, if any) and `provider`. `generation` counts writes to the entry: each
 * request uses a fresh entry and writes once, so anything but 1 means another writer raced us
 * and the report could be over someone else's data: the request is retried, then refused. The
 * root is configurable so tests can drive this through a fake tree.
 */
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AttestdError } from '../../base/errors.js';

export const DEFAULT_TSM_ROOT = '/sys/kernel/config/tsm';
/** Bounds on what the kernel may hand us: a TDX quote or SNP report plus certificates. */
const MAX_OUTBLOB = 64 * 1024;
const MAX_AUXBLOB = 64 * 1024;
const ATTEMPTS = 3;
let requests = 0;

export interface TsmReport {
  provider: string;
  outblob: Buffer;
  auxblob?: Buffer;
  generation: number;
}

export interface TsmOptions {
  root?: string;
  /** Entry name under report/; default a fresh name per request. */
  entry?: string;
  /** How long to wait for outblob to appear (fake trees; the kernel answers synchronously). */
  timeoutMs?: number;
}

async function readBounded(path: string, max: number): Promise<Buffer> {
  const data = await readFile(path);
  if (data.length > max) throw new AttestdError('CVM_REPORT_MALFORMED', `${path} is larger than ${max} bytes`);
  return data;
}

async function readGeneration(dir: string): Promise<number> {
  const text = (await readFile(join(dir, 'generation'), 'utf8')).trim();
  if (!/^\d{1,15}$/.test(text)) throw new AttestdError('CVM_REPORT_MALFORMED', `configfs-tsm generation is not a number: ${text.slice(0, 32)}`);
  return Number(text);
}

/** Whether this host offers configfs-tsm reports. */
export async function tsmAvailable(root = DEFAULT_TSM_ROOT): Promise<boolean> {
  try {
    await readFile(join(root, 'report')).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EISDIR') throw e;
    });
    return true;
  } catch {
    return false;
  }
}

export async function tsmReport(reportData: Buffer, opts: TsmOptions = {}): Promise<TsmReport> {
  if (reportData.length !== 64) throw new AttestdError('INVALID_ARGUMENT', 'configfs-tsm report data must be 64 bytes');
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    // A fresh entry per attempt: after our single write its generation must read 1; anything
    // else means another writer touched it and the report may not be over our data.
    const dir = join(opts.root ?? DEFAULT_TSM_ROOT, 'report', opts.entry ?? `attestd-${process.pid}-${++requests}`);
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw new AttestdError('CVM_UNAVAILABLE', `cannot create configfs-tsm entry ${dir}: ${(err as Error).message}`, { cause: err });
    }
    try {
      await writeFile(join(dir, 'inblob'), reportData);
      const outblob = await waitForOutblob(join(dir, 'outblob'), opts.timeoutMs ?? 5000);
      const provider = (await readFile(join(dir, 'provider'), 'utf8')).trim();
      const auxblob = await readBounded(join(dir, 'auxblob'), MAX_AUXBLOB).catch(() => undefined);
      const generation = await readGeneration(dir);
      if (generation === 1) return { provider, outblob, auxblob: auxblob && auxblob.length > 0 ? auxblob : undefined, generation };
    } catch (err) {
      if (err instanceof AttestdError) throw err;
      throw new AttestdError('CVM_UNAVAILABLE', `configfs-tsm report failed: ${(err as Error).message}`, { cause: err });
    } finally {
      await rmdir(dir).catch(() => undefined);
    }
  }
  throw new AttestdError('CVM_UNAVAILABLE', 'configfs-tsm entries kept changing under another writer');
}

async function waitForOutblob(path: string, timeoutMs: number): Promise<Buffer> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      const data = await readBounded(path, MAX_OUTBLOB);
      if (data.length > 0) return data;
    } catch (err) {
      if (err instanceof AttestdError) throw err;
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (Date.now() > end) throw new AttestdError('CVM_UNAVAILABLE', `no report appeared in ${path}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
