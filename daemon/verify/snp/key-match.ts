/**
 * Ties a report to the VCEK or VLEK that signed it. AMD derives each VCEK from one chip's
 * secret and one TCB, and each VLEK from a cloud provider's key and one TCB; the firmware
 * signs with the key for the TCB it reports. A report whose REPORTED_TCB or CHIP_ID
 * differs from the certificate's extensions was not signed by the key the certificate
 * describes, or the certificate was fetched for a different TCB.
 */
import { AttestdError } from '../../base/errors.js';
import { productOfCpuid, productOfName } from './tcb.js';
import type { AmdKeyExtensions, SnpProduct, SnpReport } from './types.js';

function mismatch(why: string): AttestdError {
  return new AttestdError('SNP_TCB_MISMATCH', why);
}

/**
 * The certificate's productName names the chain's product, and (version 3 and later) the
 * report's CPUID family and model belong to that product too. Returns the product.
 */
export function checkProduct(report: SnpReport, ext: AmdKeyExtensions, chainProduct: SnpProduct): SnpProduct {
  const named = ext.productName === undefined ? undefined : productOfName(ext.productName);
  if (!named) throw new AttestdError('SNP_CERT_CHAIN_INVALID', `the certificate's productName "${ext.productName ?? ''}" is not a known product`);
  if (named !== chainProduct) {
    throw new AttestdError('SNP_CERT_CHAIN_INVALID', `the certificate is for ${named} but chains to the ${chainProduct} root`);
  }
  if (report.cpuid) {
    const { family, model } = report.cpuid;
    const cpu = productOfCpuid(family, model);
    if (cpu !== named) {
      throw mismatch(`the report comes from CPU family 0x${family.toString(16)} model 0x${model.toString(16)} (${cpu ?? 'unknown'}), the certificate is for ${named}`);
    }
  }
  return named;
}

/** REPORTED_TCB equals the TCB in the certificate, SPL by SPL (FMC too on Turin). */
export function checkTcbMatchesKey(report: SnpReport, ext: AmdKeyExtensions): void {
  const tcb = report.reportedTcb;
  const fields = ['bootloader', 'tee', 'snp', 'microcode'] as const;
  for (const f of fields) {
    const want = ext[f];
    if (want === undefined) throw new AttestdError('SNP_CERT_CHAIN_INVALID', `the certificate has no ${f} SPL extension`);
    if (tcb[f] !== want) throw mismatch(`reported ${f} SVN ${tcb[f]}, the certificate is for ${want}`);
  }
  if (tcb.fmc !== undefined) {
    if (ext.fmc === undefined) throw new AttestdError('SNP_CERT_CHAIN_INVALID', 'the certificate has no FMC SPL extension');
    if (tcb.fmc !== ext.fmc) throw mismatch(`reported FMC SVN ${tcb.fmc}, the certificate is for ${ext.fmc}`);
  }
}

/**
 * VCEK only: CHIP_ID equals the certificate's hwID. Turin VCEKs carry an 8-byte id; the
 * report then holds it in the first 8 bytes of CHIP_ID and zeros after.
 */
export function checkChipIdMatchesKey(report: SnpReport, ext: AmdKeyExtensions): void {
  if (ext.hwId === undefined) throw new AttestdError('SNP_CERT_CHAIN_INVALID', 'the VCEK has no hwID extension');
  const idHex = ext.hwId;
  const head = report.chipId.slice(0, idHex.length);
  const tail = report.chipId.slice(idHex.length);
  if (head !== idHex || /[^0]/.test(tail)) {
    const masked = /^0+$/.test(report.chipId) ? ' (the host masks CHIP_ID to zeros)' : '';
    throw mismatch(`the report's CHIP_ID differs from the VCEK's hwID${masked}`);
  }
}
