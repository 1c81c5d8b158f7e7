/**
 * The operator's trust roots for GPU evidence (`--gpu-roots DIR`, config `gpu_roots`): root
 * certificates (PEM or DER) in DIR/device for NVIDIA device identity chains and in DIR/rim
 * for RIM signing chains. A subfolder that is absent leaves that PKI on its pinned NVIDIA
 * root; a root that does not parse, or a DIR with neither subfolder, refuses the start. The
 * daemon and `attestctl audit verify` read the same layout.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AttestdError, asAttestdError } from '../base/errors.js';
import { parseRoots } from '../verify/gpu-report/chain.js';
import type { GpuTrust } from '../appraisal/gpu-reports.js';

const MAX_ROOT_FILES = 32;
const MAX_ROOT_BYTES = 64 * 1024;

function readRootFolder(dir: string, code: 'GPU_CERT_CHAIN_INVALID' | 'RIM_INVALID'): Buffer[] | undefined {
  if (!existsSync(dir)) return undefined;
  const names = readdirSync(dir).sort();
  if (names.length > MAX_ROOT_FILES) throw new AttestdError('INVALID_ARGUMENT', `${dir} holds more than ${MAX_ROOT_FILES} files`);
  const roots: Buffer[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const st = statSync(path);
    if (!st.isFile()) continue;
    if (st.size > MAX_ROOT_BYTES) throw new AttestdError('INVALID_ARGUMENT', `${path} is larger than ${MAX_ROOT_BYTES} bytes`);
    const bytes = readFileSync(path);
    try {
      parseRoots([bytes], code);
    } catch (err) {
      throw new AttestdError('INVALID_ARGUMENT', `${path} is not a root certificate NVIDIA's profile accepts: ${asAttestdError(err).message}`);
    }
    roots.push(bytes);
  }
  if (roots.length === 0) throw new AttestdError('INVALID_ARGUMENT', `${dir} holds no root certificate`);
  return roots;
}

export function readGpuTrustRoots(dir: string): GpuTrust {
  let deviceRoots: Buffer[] | undefined;
  let rimRoots: Buffer[] | undefined;
  try {
    deviceRoots = readRootFolder(join(dir, 'device'), 'GPU_CERT_CHAIN_INVALID');
    rimRoots = readRootFolder(join(dir, 'rim'), 'RIM_INVALID');
  } catch (err) {
    if (err instanceof AttestdError) throw err;
    throw new AttestdError('INVALID_ARGUMENT', `cannot read the GPU roots in ${dir}: ${(err as Error).message}`);
  }
  if (!deviceRoots && !rimRoots) throw new AttestdError('INVALID_ARGUMENT', `${dir} has neither a device/ nor a rim/ folder of roots`);
  return { ...(deviceRoots ? { deviceRoots } : {}), ...(rimRoots ? { rimRoots } : {}) };
}
