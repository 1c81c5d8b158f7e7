/**
 * Runs `nvidia-smi -q -x` and parses its output into a measurement: the fallback when NVML
 * cannot be loaded, and the second opinion when it can. The child gets a deadline and its
 * output a size cap; it is killed outright when it exceeds either. Never on the lease path.
 */
import { execFile } from 'node:child_process';
import { AttestdError } from '../../base/errors.js';
import type { GpuMeasurement } from '../../verify/gpu/measurement.js';
import { MAX_NVIDIA_SMI_XML_BYTES, parseNvidiaSmiXml } from '../../verify/gpu/nvidia-smi-xml.js';

export interface NvidiaSmiOptions {
  /** Program to run; default 'nvidia-smi' from PATH. */
  path?: string;
  /** Default 15 s: nvidia-smi on a host with many GPUs and no persistence mode is slow. */
  timeoutMs?: number;
  /** Default MAX_NVIDIA_SMI_XML_BYTES. */
  maxBytes?: number;
}

/** The raw XML; NVIDIA_SMI_FAILED when the program is missing, fails, hangs or says too much. */
export function runNvidiaSmi(o: NvidiaSmiOptions = {}): Promise<Buffer> {
  const path = o.path ?? 'nvidia-smi';
  const maxBytes = o.maxBytes ?? MAX_NVIDIA_SMI_XML_BYTES;
  const timeoutMs = o.timeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    execFile(path, ['-q', '-x'],
      { encoding: 'buffer', timeout: timeoutMs, maxBuffer: maxBytes, killSignal: 'SIGKILL', windowsHide: true },
      (err, stdout, stderr) => {
        if (!err) {
          resolve(stdout);
          return;
        }
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: unknown };
        let why: string;
        if (e.code === 'ENOENT') why = 'not found';
        else if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') why = `output exceeded ${maxBytes} bytes`;
        else if (e.killed) why = `did not finish within ${timeoutMs} ms`;
        else if (typeof e.code === 'number') {
          // nvidia-smi prints its reason on stdout ("NVIDIA-SMI has failed because …").
          const said = (stderr.length > 0 ? stderr : stdout).toString('utf8').split('\n', 1)[0]?.slice(0, 200) ?? '';
          why = `exited with status ${e.code}${said === '' ? '' : `: ${said}`}`;
        } else why = e.message;
        reject(new AttestdError('NVIDIA_SMI_FAILED', `${path} ${why}`, { cause: err }));
      });
  });
}

/** Runs nvidia-smi and parses its XML (see parseNvidiaSmiXml for what the result holds). */
export async function collectNvidiaSmi(o: NvidiaSmiOptions = {}, noDriverReason?: string): Promise<GpuMeasurement> {
  return parseNvidiaSmiXml(await runNvidiaSmi(o), noDriverReason);
}
