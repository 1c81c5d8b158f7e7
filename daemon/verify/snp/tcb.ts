/**
 * TCB_VERSION layouts and the CPU generations they belong to. The layout changed with
 * family 0x1A (Turin), which added a FMC SPL and moved the others; a report says which
 * CPU made it only from version 3 on (CPUID_FAM_ID, CPUID_MOD_ID at 0x188).
 */
import type { SnpProduct, TcbVersion } from './types.js';

export const FAMILY_MILAN_GENOA = 0x19;
export const FAMILY_TURIN = 0x1a;

export function decodeTcb(raw: bigint, family: number | undefined): TcbVersion {
  const byte = (i: number): number => Number((raw >> BigInt(8 * i)) & 0xffn);
  const hex = raw.toString(16).padStart(16, '0');
  if (family === FAMILY_TURIN) {
    return { raw: hex, fmc: byte(0), bootloader: byte(1), tee: byte(2), snp: byte(3), microcode: byte(7) };
  }
  return { raw: hex, bootloader: byte(0), tee: byte(1), snp: byte(6), microcode: byte(7) };
}

/**
 * The product a CPUID family and model belong to: Milan is family 0x19 models 0x00-0x0F;
 * Genoa (with Bergamo and Siena) family 0x19 models 0x10-0x1F and 0xA0-0xAF; Turin family
 * 0x1A models 0x00-0x1F. Anything else is unknown, and a verifier must not guess.
 */
export function productOfCpuid(family: number, model: number): SnpProduct | undefined {
  if (family === FAMILY_MILAN_GENOA) {
    if (model <= 0x0f) return 'Milan';
    if ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf)) return 'Genoa';
    return undefined;
  }
  if (family === FAMILY_TURIN && model <= 0x1f) return 'Turin';
  return undefined;
}

export function familyOfProduct(product: SnpProduct): number {
  return product === 'Turin' ? FAMILY_TURIN : FAMILY_MILAN_GENOA;
}

/** "Milan-B0" -> Milan, "Turin" -> Turin; KDS names the product, optionally with a stepping. */
export function productOfName(name: string): SnpProduct | undefined {
  const base = name.split('-', 1)[0];
  return base === 'Milan' || base === 'Genoa' || base === 'Turin' ? base : undefined;
}
