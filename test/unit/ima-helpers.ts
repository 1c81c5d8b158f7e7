// Shared by the ima-*.test.ts files: a deliberately naive builder of ASCII IMA lines (the
// kernel's serialisation written out longhand, independent of daemon/verify/ima/templates.ts)
// and a reference PCR extend, plus the recorded fixtures under shared/fixtures/tcg-eventlog/ima.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HashAlg } from '../../daemon/verify/tpm-alg.js';

export const IMA_FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures', 'tcg-eventlog', 'ima');

export function imaFixtureNames(): string[] {
  return readdirSync(IMA_FIXTURES).sort();
}

export function imaFixture(name: string): Buffer {
  return readFileSync(join(IMA_FIXTURES, name));
}

function u32le(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** The template data the kernel hashes for an ima-ng / ima-sig entry. */
export function ngTemplateData(alg: string, digest: Buffer, path: string, sig?: Buffer): Buffer {
  const dng = Buffer.concat([Buffer.from(`${alg}:`, 'latin1'), Buffer.from([0]), digest]);
  const nng = Buffer.concat([Buffer.from(path, 'utf8'), Buffer.from([0])]);
  const parts = [u32le(dng.length), dng, u32le(nng.length), nng];
  if (sig !== undefined) parts.push(u32le(sig.length), sig);
  return Buffer.concat(parts);
}

export interface LineOptions {
  alg?: string;
  template?: 'ima-ng' | 'ima-sig';
  sig?: Buffer;
  pcr?: number;
}

/** One newline-terminated ima-ng (or ima-sig) line with a correct SHA-1 template hash. */
export function ngLine(path: string, digest: Buffer, options: LineOptions = {}): string {
  const alg = options.alg ?? 'sha256';
  const template = options.template ?? 'ima-ng';
  const sig = template === 'ima-sig' ? (options.sig ?? Buffer.alloc(0)) : undefined;
  const th = createHash('sha1').update(ngTemplateData(alg, digest, path, sig)).digest('hex');
  const pcr = options.pcr ?? 10;
  const data = `${alg}:${digest.toString('hex')} ${path}` + (sig === undefined ? '' : ` ${sig.toString('hex')}`);
  return `${pcr < 10 ? ' ' : ''}${pcr} ${th} ${template} ${data}\n`;
}

/** A legacy `ima` template line: SHA-1 file digest, name padded to 256 bytes. */
export function legacyLine(path: string, sha1: Buffer): string {
  const name = Buffer.alloc(256);
  name.write(path, 'utf8');
  const th = createHash('sha1').update(Buffer.concat([sha1, name])).digest('hex');
  return `10 ${th} ima ${sha1.toString('hex')} ${path}\n`;
}

/** A measurement violation as the kernel lists it. */
export function violationLine(path: string, alg = 'sha256', size = 32): string {
  return `10 ${'0'.repeat(40)} ima-ng ${alg}:${'0'.repeat(size * 2)} ${path}\n`;
}

export function fileDigest(i: number, alg: HashAlg = 'sha256'): Buffer {
  return createHash(alg).update(`file ${i}`).digest();
}

/** n synthetic ima-ng lines after a boot_aggregate. */
export function syntheticList(n: number): string {
  let out = ngLine('boot_aggregate', fileDigest(-1));
  for (let i = 1; i < n; i++) out += ngLine(`/usr/lib/file-${i}`, fileDigest(i));
  return out;
}

export function extend(alg: HashAlg, pcr: Buffer, value: Buffer): Buffer {
  return createHash(alg).update(pcr).update(value).digest();
}
