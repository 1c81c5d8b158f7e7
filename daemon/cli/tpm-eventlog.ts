import { readFile, stat } from 'node:fs/promises';
import { parseEventLog, replay } from '../verify/eventlog/index.js';
import type { EventDetails, EventLog, ReplayedBank, TcgEvent } from '../verify/eventlog/index.js';
import { EXIT } from './exit-codes.js';
import { printJson } from './output.js';

export const TPM_EVENTLOG_HELP = `Usage: attestctl tpm eventlog FILE [--json]

Parses a TCG PC Client event log (binary_bios_measurements, crypto-agile or SHA-1 format)
offline and prints each event and the PCR values the log replays to, per bank. Nothing in
the log is trusted until those values match a verified quote.
Exits 0 when the log parses, 1 when it does not.`;

/** The parser's own size limit, checked before reading so a huge file is never loaded. */
const MAX_FILE = 16 * 1024 * 1024;
const SUMMARY_MAX = 120;

export async function tpmEventlog(file: string | undefined, json: boolean): Promise<number> {
  if (!file) {
    process.stderr.write(`attestctl: tpm eventlog needs a FILE\n\n${TPM_EVENTLOG_HELP}\n`);
    return EXIT.USAGE;
  }
  let log: EventLog;
  let banks: ReplayedBank[];
  try {
    const bytes = await readBounded(file);
    log = parseEventLog(bytes);
    banks = replay(log);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const message = err instanceof Error ? err.message : String(err);
    if (json) printJson({ error: typeof code === 'string' ? code : 'FAILURE', message });
    else process.stderr.write(`attestctl: ${file}: ${message}\n`);
    return EXIT.FAILURE;
  }
  if (json) printJson(toJson(file, log, banks));
  else process.stdout.write(toText(file, log, banks));
  return EXIT.OK;
}

async function readBounded(file: string): Promise<Buffer> {
  const { size } = await stat(file);
  if (size > MAX_FILE) throw new Error(`${size} bytes is more than an event log may hold (${MAX_FILE})`);
  return readFile(file);
}

function pcrTable(banks: ReplayedBank[]): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const b of banks) {
    const values: Record<string, string> = {};
    for (const pcr of [...b.values.keys()].sort((x, y) => x - y)) values[String(pcr)] = b.values.get(pcr)?.toString('hex') ?? '';
    out[b.alg] = values;
  }
  return out;
}

function toJson(file: string, log: EventLog, banks: ReplayedBank[]): Record<string, unknown> {
  return {
    file,
    format: log.format,
    spec_id: log.specId,
    algorithms: log.algorithms,
    startup_locality: log.startupLocality,
    events: log.events.map((e) => ({
      index: e.index,
      offset: e.offset,
      pcr: e.pcr,
      type: e.type,
      type_name: e.typeName,
      digests: Object.fromEntries([...e.digests].map(([alg, d]) => [alg, d.toString('hex')])),
      data_size: e.data.length,
      details: e.details,
    })),
    warnings: log.warnings,
    pcrs: pcrTable(banks),
  };
}

function toText(file: string, log: EventLog, banks: ReplayedBank[]): string {
  const algs = log.algorithms.map((a) => a.alg ?? `0x${a.id.toString(16).padStart(4, '0')}`).join(', ');
  const lines = [`${file}: ${log.format} log, ${log.events.length} events, banks ${algs}, startup locality ${log.startupLocality}`];
  for (const e of log.events) {
    lines.push(`  #${String(e.index).padEnd(4)} PCR ${String(e.pcr).padEnd(2)} ${e.typeName.padEnd(34)} ${summary(e)}`);
  }
  if (log.warnings.length > 0) {
    lines.push('warnings:');
    for (const w of log.warnings) lines.push(`  event ${w.event}: ${w.message}`);
  }
  lines.push('replayed PCRs:');
  for (const [alg, values] of Object.entries(pcrTable(banks))) {
    lines.push(`  ${alg}:`);
    for (const [pcr, hex] of Object.entries(values)) lines.push(`    ${pcr.padStart(2)}: ${hex}`);
  }
  return lines.join('\n') + '\n';
}

/** One line about an event's data, printable whatever the log holds. */
function summary(e: TcgEvent): string {
  const d = e.details;
  const s = d ? describe(d) : `${e.data.length} bytes`;
  let clean = '';
  for (const c of s.slice(0, SUMMARY_MAX * 2)) {
    const code = c.codePointAt(0) ?? 0;
    clean += c === '\n' ? '\\n' : code < 0x20 || (code >= 0x7f && code < 0xa0) ? '?' : c;
  }
  return clean.length > SUMMARY_MAX ? clean.slice(0, SUMMARY_MAX - 1) + '…' : clean;
}

function describe(d: EventDetails): string {
  const str = (v: unknown): string => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');
  switch (d.kind) {
    case 'spec-id':
      return `${str(d.signature)}${Array.isArray(d.algorithms) ? ` (${d.algorithms.length} algorithms)` : ''}`;
    case 'startup-locality':
      return `StartupLocality ${str(d.locality)}`;
    case 'uefi-variable': {
      let s = str(d.name);
      if (d.value !== undefined) s += ` = ${str(d.value)}`;
      if (Array.isArray(d.signatureLists)) s += `: ${d.signatureLists.length} signature list(s)`;
      const lo = d.loadOption as { description?: string; path?: string } | undefined;
      if (lo) s += `: ${lo.description ?? ''} ${lo.path ?? ''}`;
      if (Array.isArray(d.bootOrder)) s += `: ${d.bootOrder.join(',')}`;
      const auth = d.authority as { subject?: string; text?: string } | undefined;
      if (auth) s += `: ${auth.subject ?? auth.text ?? 'authority'}`;
      return s;
    }
    case 'uefi-image-load':
      return str(d.devicePath) || `${str(d.length)} bytes at ${str(d.location)}`;
    case 'separator':
      return d.error === true ? 'ERROR separator (0x00000001)' : d.value !== undefined ? `0x${Number(d.value).toString(16).padStart(8, '0')}` : str(d.hex);
    case 'uefi-gpt':
      return `${str(d.partitionCount)} partition(s), disk ${str(d.diskGuid)}`;
    case 'uefi-handoff-tables':
    case 'uefi-handoff-tables2':
      return Array.isArray(d.tables) ? d.tables.map((t: { name?: string }) => t.name ?? '').join(', ') : '';
    case 'uefi-firmware-blob':
    case 'uefi-firmware-blob2':
      return `${d.description !== undefined ? `${str(d.description)} ` : ''}${str(d.length)} bytes at ${str(d.base)}`;
    case 'event-tag':
      return `tag 0x${Number(d.taggedEventId).toString(16)}: ${str(d.data)}`;
    default:
      if (d.text !== undefined) return d.text === '' ? '""' : str(d.text);
      if (d.guid !== undefined) return str(d.guid);
      if (d.signature !== undefined) return str(d.signature);
      if (d.kind === 'post-code' && d.base !== undefined) return `${str(d.length)} bytes at ${str(d.base)}`;
      return str(d.hex).slice(0, 64) + (str(d.hex).length > 64 ? '…' : '');
  }
}
