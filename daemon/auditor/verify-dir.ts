/**
 * Reads a log folder and runs the offline verifier over it, record by record, then over the
 * published checkpoint. The one path both `attestctl audit verify` and the tests take.
 */
import type { Certificate } from '../verify/x509/certificate.js';
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GpuTrust } from '../appraisal/gpu-reports.js';
import { LogVerifier } from './log-verifier.js';
import type { Summary } from './report.js';
import type { CollateralFile } from '../verify/tdx/collateral.js';
import type { CvmTrustRoots } from '../verify/cvm/trust-roots.js';
import { framesOf, readSegments } from '../audit/reader.js';
import { CHECKPOINT_FILE } from '../audit/segments.js';

/** Resolves with the summary; rejects with AuditFailure naming the first failing record, or an I/O error. */
export async function verifyLogDir(dir: string, akKey: KeyObject | undefined, collateral: readonly CollateralFile[] = [],
  trust: { cvmRoots?: CvmTrustRoots | undefined; gpu?: GpuTrust | undefined; akCas?: readonly Certificate[] | undefined } = {}): Promise<Summary> {
  const v = new LogVerifier(akKey, collateral, trust);
  for await (const seg of readSegments(dir)) {
    for (const f of framesOf(seg)) {
      if ('payload' in f) v.record(f.payload, { segment: f.segment, offset: f.offset });
      else v.damaged({ segment: f.segment, offset: f.offset }, f.why);
      if (v.pending) await v.settle();
    }
  }
  const published = await readFile(join(dir, CHECKPOINT_FILE), 'utf8').catch(() => undefined);
  return v.finish(published);
}
