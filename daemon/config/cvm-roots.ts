/**
 * The confidential-VM trust roots folder (`--cvm-roots DIR`, config key cvm_roots), read by
 * the daemon at start and by `attestctl audit verify --cvm-roots` alike:
 *   DIR/amd/    AMD ARK certificates (SEV-SNP), one or more per file, PEM or DER
 *   DIR/intel/  Intel SGX Root CA certificates (TDX), likewise
 * A vendor without its subfolder keeps the pinned vendor keys. A subfolder that holds no
 * certificate, a file that is not one, or a certificate that is not a self-signed root under
 * its vendor's profile refuses the start: a typo must not silently trust nothing or anything.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AttestdError } from '../base/errors.js';
import { checkRootCertificate, CVM_VENDORS, type CvmTrustRoots } from '../verify/cvm/trust-roots.js';
import { looksLikePem, pemCertificates } from '../verify/x509/pem.js';

const MAX_FILES = 32;
const MAX_FILE_BYTES = 256 * 1024;

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function certificatesIn(dir: string): Buffer[] {
  const names = readdirSync(dir).filter((n) => !n.startsWith('.')).sort();
  if (names.length > MAX_FILES) throw new AttestdError('INVALID_ARGUMENT', `${dir}: more than ${MAX_FILES} files`);
  const out: Buffer[] = [];
  for (const name of names) {
    const path = join(dir, name);
    if (statSync(path).size > MAX_FILE_BYTES) throw new AttestdError('INVALID_ARGUMENT', `${path}: larger than ${MAX_FILE_BYTES} bytes`);
    const bytes = readFileSync(path);
    const certs = looksLikePem(bytes) ? pemCertificates(bytes, 'INVALID_ARGUMENT') : [bytes];
    if (certs.length === 0) throw new AttestdError('INVALID_ARGUMENT', `${path}: no certificate`);
    out.push(...certs);
  }
  return out;
}

/** The roots under `dir`, each checked to be a self-signed root of its vendor. */
export function readCvmRoots(dir: string): CvmTrustRoots {
  if (!isDir(dir)) throw new AttestdError('INVALID_ARGUMENT', `--cvm-roots ${dir}: not a folder`);
  const roots: { -readonly [K in keyof CvmTrustRoots]: CvmTrustRoots[K] } = {};
  for (const vendor of CVM_VENDORS) {
    const sub = join(dir, vendor);
    if (!isDir(sub)) continue;
    const certs = certificatesIn(sub);
    if (certs.length === 0) throw new AttestdError('INVALID_ARGUMENT', `${sub}: no root certificate`);
    certs.forEach((der, i) => checkRootCertificate(vendor, der, `${sub} certificate ${i + 1}`));
    roots[vendor] = certs;
  }
  if (!roots.amd && !roots.intel) throw new AttestdError('INVALID_ARGUMENT', `--cvm-roots ${dir}: neither amd/ nor intel/ is there`);
  return roots;
}
