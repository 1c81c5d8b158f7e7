/**
 * A measured boot played into a software TPM: a crypto-agile TCG event log (SHA-256 only) and
 * an IMA list are written event by event while the same digests are extended into the TPM
 * with tpm2-tools, so log and quote agree exactly as on a real host.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, writeFileSync } from 'node:fs';
import { tpm2 } from './swtpm.js';
import { serialiseTemplate } from '../../daemon/verify/ima/templates.js';
import { bootAggregateDigest } from '../../daemon/verify/ima/boot-aggregate.js';

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();

export const EV = { SEPARATOR: 0x4, S_CRTM_VERSION: 0x8, EFI_BOOT_SERVICES_APPLICATION: 0x80000003 };

export class MeasuredBoot {
  private readonly pcrs = new Map<number, Buffer>();

  constructor(private readonly tcti: string, readonly eventLogPath: string, readonly imaPath: string) {
    // Spec ID Event03: one algorithm, SHA-256 (0x000b) of 32 bytes.
    const spec = Buffer.concat([Buffer.from('Spec ID Event03\0', 'latin1'), u32(0), Buffer.from([0, 2, 0, 2]), u32(1),
      Buffer.from([0x0b, 0x00, 32, 0]), Buffer.from([0])]);
    writeFileSync(eventLogPath, Buffer.concat([u32(0), u32(0x3), Buffer.alloc(20), u32(spec.length), spec]));
    writeFileSync(imaPath, '');
  }

  pcr(i: number): Buffer {
    return this.pcrs.get(i) ?? Buffer.alloc(32);
  }

  /** Extends the TPM and, unless `unlogged`, logs the event. */
  async event(pcr: number, type: number, data: Buffer, digest: Uint8Array = sha256(data), unlogged = false): Promise<void> {
    if (!unlogged) {
      appendFileSync(this.eventLogPath, Buffer.concat([u32(pcr), u32(type), u32(1), Buffer.from([0x0b, 0x00]), digest, u32(data.length), data]));
    }
    this.pcrs.set(pcr, sha256(Buffer.concat([this.pcr(pcr), digest])));
    const r = await tpm2(["pcrextend", `${pcr}:sha256=${Buffer.from(digest).toString("hex")}`], this.tcti);
    if (r.code !== 0) throw new Error(`pcrextend failed: ${r.stderr}`);
  }

  /** The firmware part of a boot: S-CRTM version, one boot application, separators for PCRs 0-7. */
  async firmware(appDigest: Uint8Array): Promise<void> {
    await this.event(0, EV.S_CRTM_VERSION, Buffer.from('1.0\0', 'utf16le'));
    await this.event(4, EV.EFI_BOOT_SERVICES_APPLICATION, Buffer.alloc(32), appDigest);
    for (let i = 0; i <= 7; i++) await this.event(i, EV.SEPARATOR, Buffer.alloc(4));
  }

  /** An IMA ima-ng entry: listed (SHA-1 template hash) and extended into PCR 10 (SHA-256 bank). */
  async ima(path: string, fileDigest: Buffer): Promise<void> {
    const data = serialiseTemplate('ima-ng', { digestAlg: 'sha256', digest: fileDigest, name: Buffer.from(path) });
    const sha1 = createHash('sha1').update(data).digest('hex');
    appendFileSync(this.imaPath, `10 ${sha1} ima-ng sha256:${fileDigest.toString('hex')} ${path}\n`);
    await this.event(10, 0, Buffer.alloc(0), sha256(data), true);
  }

  /** The first IMA entry: boot_aggregate over PCRs 0-9 as they stand. */
  async bootAggregate(): Promise<void> {
    const bank = { alg: 'sha256' as const, values: new Map(Array.from({ length: 10 }, (_, i) => [i, this.pcr(i)] as [number, Buffer])) };
    await this.ima('boot_aggregate', bootAggregateDigest(bank));
  }
}
