// Shared by the eventlog-*.test.ts files: recorded TCG event logs (shared/fixtures/tcg-eventlog
// and tpm/, see SOURCES.md) and builders for synthetic logs.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PcrBank } from '../../daemon/verify/pcr.js';
import type { HashAlg } from '../../daemon/verify/tpm-alg.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures');
export const EVENTLOG_DIR = join(FIXTURES, 'tcg-eventlog');
export const TPM_DIR = join(FIXTURES, 'tpm');

export function eventlogFixture(name: string): Buffer {
  return readFileSync(join(EVENTLOG_DIR, name));
}

/** Every PC Client log fixture (the CCEL ones are a different format). */
export function pcClientLogs(): string[] {
  return readdirSync(EVENTLOG_DIR).filter((f) => f.endsWith('.bin') && !f.startsWith('ccel_')).sort();
}

export function banksFromJson(json: Record<string, Record<string, string>>): PcrBank[] {
  return Object.entries(json).map(([alg, values]) => ({
    alg: alg as HashAlg,
    values: new Map(Object.entries(values).map(([i, hex]) => [Number(i), Buffer.from(hex, 'hex')])),
  }));
}

export function gceLog(): Buffer {
  return readFileSync(join(TPM_DIR, 'gce_cos85_nonce9009_eventlog.bin'));
}

export function gceQuotedPcrs(): PcrBank[] {
  const json = JSON.parse(readFileSync(join(TPM_DIR, 'gce_cos85_nonce9009_pcrs.json'), 'utf8')) as {
    pcrs: Record<string, Record<string, string>>;
  };
  return banksFromJson(json.pcrs);
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};

/** TCG_PCR_EVENT (SHA-1 format). */
export function sha1Event(pcr: number, type: number, digest: Buffer, data: Buffer): Buffer {
  return Buffer.concat([u32(pcr), u32(type), digest, u32(data.length), data]);
}

/** TCG_EfiSpecIDEvent body. */
export function specIdData(algs: { id: number; size: number }[], vendor: Buffer = Buffer.alloc(0), uintnSize = 2): Buffer {
  return Buffer.concat([
    Buffer.from('Spec ID Event03\0', 'latin1'),
    u32(0),
    Buffer.from([0, 2, 0, uintnSize]),
    u32(algs.length),
    ...algs.map((a) => Buffer.concat([u16(a.id), u16(a.size)])),
    Buffer.from([vendor.length]),
    vendor,
  ]);
}

/** The leading Spec ID event of a crypto-agile log. */
export function specIdEvent(algs: { id: number; size: number }[], vendor?: Buffer): Buffer {
  return sha1Event(0, 3, Buffer.alloc(20), specIdData(algs, vendor));
}

/** TCG_PCR_EVENT2. */
export function agileEvent(pcr: number, type: number, digests: { id: number; digest: Buffer }[], data: Buffer): Buffer {
  return Buffer.concat([
    u32(pcr),
    u32(type),
    u32(digests.length),
    ...digests.map((d) => Buffer.concat([u16(d.id), d.digest])),
    u32(data.length),
    data,
  ]);
}

export const SHA1_SHA256 = [
  { id: 0x0004, size: 20 },
  { id: 0x000b, size: 32 },
];
