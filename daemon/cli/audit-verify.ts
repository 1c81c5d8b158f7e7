/** attestctl audit verify DIR --ak AK.pem: the offline verifier over a copied log folder. */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { certificatesOf } from '../verify/ak-certificate.js';
import type { Certificate } from '../verify/x509/certificate.js';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AuditFailure, type Summary } from '../auditor/report.js';
import { verifyLogDir } from '../auditor/verify-dir.js';
import { readCvmRoots } from '../config/cvm-roots.js';
import type { CvmTrustRoots } from '../verify/cvm/trust-roots.js';
import { EXIT } from './exit-codes.js';
import { readGpuTrustRoots } from '../config/gpu-roots.js';
import type { GpuTrust } from '../appraisal/gpu-reports.js';
import { printJson } from './output.js';

export const AUDIT_VERIFY_HELP = `Usage: attestctl audit verify DIR (--ak AK.pem | --ca ENROLL-CA.pem) [--collateral DIR] [--gpu-roots DIR]
         [--cvm-roots DIR] [--json]

Checks a copy of an attestd audit log folder (STATE_DIR/audit) with nothing but the TPM
attestation key's public key (PEM, as \`attestctl status --json\` shows it): record framing
and CRCs, sequence, the Merkle root against every checkpoint and the published checkpoint,
checkpoint signatures, the chain from each session key to the attestation key through the
quotes that bound it, every quote and PCR digest, every epoch result and lease token
signature; then it re-runs each appraisal on the recorded evidence under the recorded policy
and confirms every grant and renewal happened under a passing, fresh epoch. --collateral names
the confidential-VM collateral (TDX certificates, CRLs, TCB info, QE identity) the host used.
--ca, instead of --ak, anchors on the enrolling CA (docs/enrollment.md): each session's
attestation key is trusted through the AK certificate its start records, which must chain to a
certificate in ENROLL-CA.pem and certify exactly that key (the ak-certificate check).
--gpu-roots names the roots GPU reports (DIR/device) and RIMs (DIR/rim) are judged by, as the
daemon's --gpu-roots; without it, the pinned NVIDIA roots.
--cvm-roots names the confidential-VM trust roots to re-appraise with, laid out as for the
daemon (DIR/amd/, DIR/intel/); without it the pinned vendor roots. Every root a session
recorded as in force must be among them, or the log fails the cvm-roots check: the roots the
host chose are never taken from the log.
Exit codes: 0 verified, 8 verification failed (the first failing record is printed),
2 usage, 1 the folder or key could not be read.`;

export async function auditVerify(dir: string | undefined, akPath: string | undefined, json: boolean, collateralDir?: string,
  gpuRootsDir?: string, cvmRootsDir?: string, caPath?: string): Promise<number> {
  if (!dir || (akPath === undefined) === (caPath === undefined)) {
    process.stderr.write(`attestctl: audit verify needs DIR and one of --ak AK.pem or --ca ENROLL-CA.pem\n\n${AUDIT_VERIFY_HELP}\n`);
    return EXIT.USAGE;
  }
  let key: KeyObject | undefined;
  let akCas: Certificate[] | undefined;
  try {
    if (akPath !== undefined) key = createPublicKey(await readFile(akPath));
    else akCas = certificatesOf(await readFile(caPath!));
  } catch (err) {
    process.stderr.write(`attestctl: cannot read ${akPath ?? caPath!}: ${(err as Error).message}\n`);
    return EXIT.FAILURE;
  }
  let gpuTrust: GpuTrust | undefined;
  try {
    gpuTrust = gpuRootsDir !== undefined ? readGpuTrustRoots(gpuRootsDir) : undefined;
  } catch (err) {
    process.stderr.write(`attestctl: ${(err as Error).message}\n`);
    return EXIT.FAILURE;
  }
  let roots: CvmTrustRoots | undefined;
  try {
    roots = cvmRootsDir !== undefined ? readCvmRoots(cvmRootsDir) : undefined;
  } catch (err) {
    process.stderr.write(`attestctl: ${(err as Error).message}\n`);
    return EXIT.USAGE;
  }
  const started = Date.now();
  let summary: Summary;
  try {
    const collateral = collateralDir ? await Promise.all((await readdir(collateralDir)).map(async (name) => ({ name, bytes: await readFile(join(collateralDir, name)) }))) : [];
    summary = await verifyLogDir(dir, key, collateral, { gpu: gpuTrust, cvmRoots: roots, akCas });
  } catch (err) {
    if (err instanceof AuditFailure) {
      if (json) printJson({ verified: false, check: err.check, message: err.message, ...err.where });
      else {
        const at = err.where.segment ? ` (${err.where.segment} offset ${err.where.offset})` : '';
        process.stdout.write(`FAILED at record ${err.where.seq}${at}: ${err.check}: ${err.message}\n`);
      }
      return EXIT.AUDIT_FAILED;
    }
    process.stderr.write(`attestctl: cannot read ${dir}: ${(err as Error).message}\n`);
    return EXIT.FAILURE;
  }
  const seconds = (Date.now() - started) / 1000;
  if (json) printJson({ verified: true, ...summary, seconds });
  else {
    const span = summary.records ? `${new Date(summary.firstTimeMs).toISOString()} .. ${new Date(summary.lastTimeMs).toISOString()}` : 'empty';
    process.stdout.write(`verified ${summary.records} records in ${seconds.toFixed(2)} s\n` +
      `sessions ${summary.sessions}, epochs ${summary.epochs} (${summary.passingEpochs} passing), leases granted ${summary.grants}, ` +
      `renewed ${summary.renewals}, denied ${summary.denials} (in ${summary.denialRecords} records), revocations ${summary.revocations}, checkpoints ${summary.checkpoints}\n` +
      `time span ${span}\nroot ${summary.root}\n` +
      (summary.uncheckpointedTail ? `${summary.uncheckpointedTail} record(s) after the last checkpoint are not yet signed\n` : ''));
  }
  return EXIT.OK;
}
