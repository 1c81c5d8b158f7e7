/**
 * Collection of one epoch's evidence beyond the quote, as the policy asks for it: the boot
 * event log, the new IMA lines, the confidential-VM report over the binding and its collateral.
 * Keeps what must carry across epochs of a session: the IMA position and replayed PCR 10, and
 * the digests of artifacts already recorded in full (a large artifact is recorded again only
 * when it changed). Reads are bounded; every failure becomes a recorded reason, never a crash.
 */
import { createHash } from 'node:crypto';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { asAttestdError } from '../base/errors.js';
import type { Policy } from '../policy/types.js';
import type { PcrBank } from '../verify/pcr.js';
import type { CollateralFile } from '../verify/tdx/collateral.js';
import type { CvmSource } from '../evidence/cvm/source.js';
import { imaMatchingPrefix, type ImaState, type RecordedCvm } from '../appraisal/source-verdicts.js';
import type { attestd } from '../gen/proto.js';

const MAX_EVENT_LOG = 16 * 1024 * 1024;
const MAX_IMA_READ = 16 * 1024 * 1024;
const MAX_COLLATERAL_FILE = 1024 * 1024;
const MAX_COLLATERAL_FILES = 256;

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();
const message = (err: unknown) => `${asAttestdError(err).code}: ${asAttestdError(err).message}`;

export interface CollectedExtra {
  boot?: { log?: Buffer; readError?: string };
  ima?: { state?: ImaState; newLines: Buffer; readError?: string; byteOffset: number; restarted: boolean };
  cvm?: { rec: RecordedCvm; via?: string; provider?: string; collateral: CollateralFile[]; collateralIssuedAtMs?: number };
}

export class EvidenceCollector {
  private imaOffset = 0;
  private imaState: ImaState | undefined;
  private lastEventLogDigest: Buffer | undefined;
  private lastCertTableDigest: Buffer | undefined;

  constructor(private readonly cvmSource: CvmSource | undefined) {}

  /** Before the quote: the confidential-VM report over the binding (it must name this epoch). */
  async beforeQuote(policy: Policy, binding: Buffer): Promise<CollectedExtra['cvm']> {
    if (!policy.cvm || !this.cvmSource) return undefined;
    const collateral = policy.cvm.collateral ? await readCollateral(policy.cvm.collateral) : { files: [], oldestMs: undefined };
    try {
      const got = await this.cvmSource.collect(binding);
      if (!got) return { rec: {}, collateral: collateral.files, collateralIssuedAtMs: collateral.oldestMs };
      return { rec: { kind: got.kind, report: got.report, certTable: got.certTable }, via: got.via, provider: got.provider,
        collateral: collateral.files, collateralIssuedAtMs: collateral.oldestMs };
    } catch (err) {
      return { rec: { collectError: message(err) }, collateral: collateral.files, collateralIssuedAtMs: collateral.oldestMs };
    }
  }

  /**
   * After the quote: the event log, and the IMA lines that bring PCR 10 from where the last
   * epoch left it to the value just quoted (the list may have run ahead of the quote).
   */
  async afterQuote(policy: Policy, quoted: PcrBank[]): Promise<Omit<CollectedExtra, 'cvm'>> {
    const out: Omit<CollectedExtra, 'cvm'> = {};
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
          this.imaState = undefined;
          restarted = true;
        }
        const tail = await readFrom(policy.ima.list, this.imaOffset, MAX_IMA_READ);
        let take: number | undefined;
        try {
          take = imaMatchingPrefix(policy.ima.bank, this.imaState, tail, quoted);
        } catch {
          take = undefined;
        }
        // No prefix matches: record everything read, so the failure can be checked offline.
        const newLines = tail.subarray(0, take ?? tail.length);
        out.ima = { state: this.imaState, newLines, byteOffset: this.imaOffset, restarted };
      } catch (err) {
        out.ima = { state: this.imaState, newLines: Buffer.alloc(0), readError: (err as Error).message, byteOffset: this.imaOffset, restarted };
      }
    }
    return out;
  }

  /** After the verdict: advance IMA only over lines that replayed to the quote. */
  commitIma(next: ImaState | undefined, consumed: number): void {
    if (!next) return;
    this.imaState = next;
    this.imaOffset += consumed;
  }

  /** The audit record's view of the extra evidence; large artifacts only when they changed. */
  record(extra: CollectedExtra): Pick<attestd.audit.v1.EpochResult.$Properties, 'boot' | 'ima' | 'cvm'> {
    const out: Pick<attestd.audit.v1.EpochResult.$Properties, 'boot' | 'ima' | 'cvm'> = {};
    if (extra.boot) {
      if (extra.boot.log) {
        const digest = sha256(extra.boot.log);
        const changed = !this.lastEventLogDigest?.equals(digest);
        this.lastEventLogDigest = digest;
        out.boot = { eventLogSha256: digest, eventLog: changed ? extra.boot.log : null };
      } else {
        out.boot = { eventLogSha256: Buffer.alloc(0), readError: extra.boot.readError ?? '' };
      }
    }
    if (extra.ima) {
      out.ima = { newLines: extra.ima.newLines, entriesBefore: extra.ima.state?.entries ?? 0, byteOffset: extra.ima.byteOffset,
        readError: extra.ima.readError ?? '', restarted: extra.ima.restarted };
    }
    if (extra.cvm) {
      const { rec } = extra.cvm;
      const table = rec.certTable ? Buffer.from(rec.certTable) : undefined;
      const digest = table ? sha256(table) : undefined;
      const changed = digest && !this.lastCertTableDigest?.equals(digest);
      if (digest) this.lastCertTableDigest = digest;
      out.cvm = { kind: rec.kind ?? '', via: extra.cvm.via ?? '', provider: extra.cvm.provider ?? '', report: rec.report ?? null,
        certTableSha256: digest ?? null, certTable: changed ? table : null, collectError: rec.collectError ?? '' };
    }
    return out;
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
