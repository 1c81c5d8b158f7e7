/**
 * Collection of one epoch's evidence beyond the quote, as the policy asks for it: the boot
 * event log, the new IMA lines, the confidential-VM report over the binding and its collateral.
 * Keeps the one thing collection must carry across epochs: the byte offset reached in the IMA
 * list (the replayed PCR 10 lives in the session's record carry). Reads are bounded; every
 * failure becomes recorded evidence of the failure, never a crash.
 */
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { asAttestdError } from '../base/errors.js';
import type { Policy } from '../policy/types.js';
import type { PcrBank } from '../verify/pcr.js';
import type { CollateralFile } from '../verify/tdx/collateral.js';
import type { CvmSource } from '../evidence/cvm/source.js';
import { imaMatchingPrefix, type ImaState } from '../appraisal/source-verdicts.js';
import type { CollectedEvidence } from '../appraisal/epoch-record.js';

const MAX_EVENT_LOG = 16 * 1024 * 1024;
const MAX_IMA_READ = 16 * 1024 * 1024;
const MAX_COLLATERAL_FILE = 1024 * 1024;
const MAX_COLLATERAL_FILES = 256;

const message = (err: unknown) => `${asAttestdError(err).code}: ${asAttestdError(err).message}`;

/** The confidential-VM report with the collateral read for it (which is not recorded). */
export interface CollectedCvm {
  evidence: NonNullable<CollectedEvidence['cvm']>;
  collateral: CollateralFile[];
}

export class EvidenceCollector {
  private imaOffset = 0;

  constructor(private readonly cvmSource: CvmSource | undefined) {}

  /** Before the quote: the confidential-VM report over the binding (it must name this epoch). */
  async beforeQuote(policy: Policy, binding: Buffer): Promise<CollectedCvm | undefined> {
    if (!policy.cvm || !this.cvmSource) return undefined;
    const collateral = policy.cvm.collateral ? await readCollateral(policy.cvm.collateral) : { files: [], oldestMs: undefined };
    const issued = { collateralIssuedAtMs: collateral.oldestMs };
    try {
      const got = await this.cvmSource.collect(binding);
      if (!got) return { evidence: issued, collateral: collateral.files };
      return { evidence: { kind: got.kind, report: got.report, certTable: got.certTable, via: got.via, provider: got.provider, ...issued },
        collateral: collateral.files };
    } catch (err) {
      return { evidence: { collectError: message(err), ...issued }, collateral: collateral.files };
    }
  }

  /**
   * After the quote: the event log, and the IMA lines that bring PCR 10 from where the last
   * epoch left it (`ima`, the session's replay so far) to the value just quoted (the list may
   * have run ahead of the quote).
   */
  async afterQuote(policy: Policy, quoted: PcrBank[], ima: ImaState | undefined): Promise<Pick<CollectedEvidence, 'boot' | 'ima'>> {
    const out: Pick<CollectedEvidence, 'boot' | 'ima'> = {};
    if (policy.boot) {
      try {
        const log = await readFile(policy.boot.eventLog);
        out.boot = log.length > MAX_EVENT_LOG ? { readError: `larger than ${MAX_EVENT_LOG} bytes` } : { log };
      } catch (err) {
        out.boot = { readError: (err as Error).message };
      }
    }
    if (policy.ima) {
      let restarted = false;
      try {
        const size = (await stat(policy.ima.list)).size;
        if (size < this.imaOffset) {
          // The list is shorter than what we consumed: a new boot or a replaced list.
          this.imaOffset = 0;
          restarted = true;
        }
        const tail = await readFrom(policy.ima.list, this.imaOffset, MAX_IMA_READ);
        let take: number | undefined;
        try {
          take = imaMatchingPrefix(policy.ima.bank, restarted ? undefined : ima, tail, quoted);
        } catch {
          take = undefined;
        }
        // No prefix matches: record everything read, so the failure can be checked offline.
        const newLines = tail.subarray(0, take ?? tail.length);
        out.ima = { newLines, byteOffset: this.imaOffset, restarted };
      } catch (err) {
        out.ima = { newLines: Buffer.alloc(0), readError: (err as Error).message, byteOffset: this.imaOffset, restarted };
      }
    }
    return out;
  }

  /** After the verdict: advance IMA only over lines that replayed to the quote. */
  advanceIma(consumed: number): void {
    this.imaOffset += consumed;
  }
}

async function readFrom(path: string, offset: number, max: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.alloc(Math.min(1024 * 1024, max - total));
      if (buf.length === 0) break;
      const { bytesRead } = await fh.read(buf, 0, buf.length, offset + total);
      if (bytesRead === 0) break;
      chunks.push(buf.subarray(0, bytesRead));
      total += bytesRead;
    }
    return Buffer.concat(chunks);
  } finally {
    await fh.close();
  }
}

/** Every regular file in the collateral folder (bounded), and the oldest modification time. */
async function readCollateral(dir: string): Promise<{ files: CollateralFile[]; oldestMs: number | undefined }> {
  const files: CollateralFile[] = [];
  let oldestMs: number | undefined;
  let names: string[];
  try {
    names = (await readdir(dir)).sort().slice(0, MAX_COLLATERAL_FILES);
  } catch {
    return { files, oldestMs };
  }
  for (const name of names) {
    try {
      const st = await stat(join(dir, name));
      if (!st.isFile() || st.size > MAX_COLLATERAL_FILE) continue;
      files.push({ name, bytes: await readFile(join(dir, name)) });
      oldestMs = Math.min(oldestMs ?? st.mtimeMs, st.mtimeMs);
    } catch {
      // A file that vanished or cannot be read is simply not collateral.
    }
  }
  return { files, oldestMs };
}
