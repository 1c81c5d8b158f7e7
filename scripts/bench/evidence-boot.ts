/**
 * A measured boot played into a software TPM for the benchmarks: a recorded boot log is
 * copied and its digests extended into the TPM in log order, in every bank the log carries
 * (SHA-256 values tracked here for policies and boot_aggregate), and an IMA list in
 * ima-ng form is written line by line with each entry's SHA-256 template hash extended into
 * PCR 10, the line before its extend as the kernel orders them. Log, list and TPM therefore
 * agree as on a real host. Extends go through tpm2_pcrextend, many to one command.
 */
import { createHash } from 'node:crypto';
import { appendFile, copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseEventLog, EV } from '../../daemon/verify/eventlog/index.js';
import { bootAggregateDigest } from '../../daemon/verify/ima/boot-aggregate.js';
import { serialiseTemplate } from '../../daemon/verify/ima/templates.js';
import { tpm2Ok } from './swtpm.js';

const sha256 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();
/** Extends per tpm2_pcrextend command; one command line stays far below ARG_MAX. */
const EXTEND_BATCH = 250;
/** Banks tpm2_pcrextend names the same way the event log parser does. */
const KNOWN_BANKS = ['sha1', 'sha256', 'sha384', 'sha512'];

export interface ImaLine {
  line: string;
  templateData: Buffer;
}

/** One ima-ng entry as the kernel lists it: PCR 10, SHA-1 template hash, sha256 file digest. */
export function imaNgLine(path: string, fileDigest: Buffer): ImaLine {
  const templateData = serialiseTemplate('ima-ng', { digestAlg: 'sha256', digest: fileDigest, name: Buffer.from(path) });
  const sha1 = createHash('sha1').update(templateData).digest('hex');
  return { line: `10 ${sha1} ima-ng sha256:${fileDigest.toString('hex')} ${path}\n`, templateData };
}

/** The boot log's boot application digests (SHA-256), each once, for a policy's allowlist. */
export function bootApplications(log: Buffer): string[] {
  const parsed = parseEventLog(log, { details: false });
  const out = new Set<string>();
  for (const e of parsed.events) {
    const d = e.digests.get('sha256');
    if (e.type === EV.EFI_BOOT_SERVICES_APPLICATION && d) out.add(d.toString('hex'));
  }
  return [...out];
}

export class BootWriter {
  readonly eventLogPath: string;
  readonly imaPath: string;
  private readonly pcrs = new Map<number, Buffer>();

  constructor(private readonly tcti: string, dir: string) {
    this.eventLogPath = join(dir, 'binary_bios_measurements');
    this.imaPath = join(dir, 'ascii_runtime_measurements');
  }

  /** SHA-256 PCR `i` as the TPM now holds it (all that this writer extended; zero otherwise). */
  pcr(i: number): Buffer {
    return this.pcrs.get(i) ?? Buffer.alloc(32);
  }

  /** Extends each spec's PCR in every bank it names; only the SHA-256 values are tracked. */
  private async extend(specs: { pcr: number; digests: Map<string, Buffer> }[]): Promise<void> {
    for (let i = 0; i < specs.length; i += EXTEND_BATCH) {
      const batch = specs.slice(i, i + EXTEND_BATCH);
      const args = batch.map((s) => `${s.pcr}:${[...s.digests].map(([alg, d]) => `${alg}=${d.toString('hex')}`).join(',')}`);
      await tpm2Ok(['tpm2_pcrextend', ...args], this.tcti);
      for (const s of batch) {
        const d = s.digests.get('sha256');
        if (d) this.pcrs.set(s.pcr, sha256(Buffer.concat([this.pcr(s.pcr), d])));
      }
    }
  }

  /**
   * Copies a recorded crypto-agile log with a SHA-256 bank and extends its events in every
   * bank the log carries (the daemon checks each bank the quote and the log share). The log
   * must not set a StartupLocality: the software TPM starts PCR 0 at zero.
   */
  async firmware(recordedLog: string): Promise<Buffer> {
    const bytes = await readFile(recordedLog);
    const log = parseEventLog(bytes, { details: false });
    if (log.startupLocality !== 0) throw new Error(`${recordedLog} starts at locality ${log.startupLocality}`);
    const specs: { pcr: number; digests: Map<string, Buffer> }[] = [];
    for (const e of log.events) {
      if (e.type === EV.NO_ACTION) continue;
      if (!e.digests.has('sha256')) throw new Error(`${recordedLog}: event ${e.index} has no SHA-256 digest`);
      specs.push({ pcr: e.pcr, digests: new Map([...e.digests].filter(([alg]) => KNOWN_BANKS.includes(alg))) });
    }
    await copyFile(recordedLog, this.eventLogPath);
    await writeFile(this.imaPath, '');
    await this.extend(specs);
    return bytes;
  }

  /** Appends entries to the list, then extends PCR 10 with their SHA-256 template hashes. */
  async ima(entries: { path: string; digest: Buffer }[]): Promise<void> {
    const lines = entries.map((e) => imaNgLine(e.path, e.digest));
    await appendFile(this.imaPath, lines.map((l) => l.line).join(''));
    await this.extend(lines.map((l) => ({ pcr: 10, digests: new Map([['sha256', sha256(l.templateData)]]) })));
  }

  /** The first IMA entry: boot_aggregate over PCRs 0-9 as they stand. */
  async bootAggregate(): Promise<void> {
    const values = new Map(Array.from({ length: 10 }, (_, i) => [i, this.pcr(i)] as [number, Buffer]));
    await this.ima([{ path: 'boot_aggregate', digest: bootAggregateDigest({ alg: 'sha256', values }) }]);
  }
}
