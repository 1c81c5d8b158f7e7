/**
 * The RIM folder a policy names (gpu.rims.dir), read for one epoch: every regular *.xml file,
 * in name order, bounded in count and size. Nothing is believed here: each RIM's signature is
 * checked at appraisal (appraisal/gpu-reports.ts), the same way offline. A folder that cannot
 * be read gives no RIMs, which fails every GPU when the policy requires them.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_RIM_BYTES } from '../verify/gpu-report/xml.js';
import type { RecordedRim } from '../appraisal/gpu-reports.js';

export const MAX_RIM_FILES = 64;
const MAX_RIM_TOTAL = 8 * 1024 * 1024;

export async function readRimFolder(dir: string): Promise<{ rims: RecordedRim[]; error?: string }> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.xml')).sort().slice(0, MAX_RIM_FILES);
  } catch (err) {
    return { rims: [], error: `cannot read the RIM folder ${dir}: ${(err as Error).message}` };
  }
  const rims: RecordedRim[] = [];
  let total = 0;
  for (const name of names) {
    try {
      const st = await stat(join(dir, name));
      if (!st.isFile() || st.size > MAX_RIM_BYTES || total + st.size > MAX_RIM_TOTAL) continue;
      const xml = await readFile(join(dir, name));
      if (xml.length > MAX_RIM_BYTES) continue;
      total += xml.length;
      rims.push({ name, xml });
    } catch {
      // A file that vanished or cannot be read is no RIM.
    }
  }
  return { rims };
}
