/** attestctl gpu inspect | parse-smi | verify-report: GPU evidence by hand. */
import { readFile } from 'node:fs/promises';
import { GpuCollector } from '../evidence/gpu/collector.js';
import { parseNvidiaSmiXml } from '../verify/gpu/nvidia-smi-xml.js';
import { gpuMeasurementSha256 } from '../verify/gpu/measurement.js';
import { asAttestdError } from '../base/errors.js';
import { gpuVerify, GPU_VERIFY_HELP } from './gpu-verify.js';
import { EXIT } from './exit-codes.js';
import { printJson } from './output.js';

export const GPU_HELP = `Usage: attestctl gpu inspect [--nvml PATH] [--json]
       attestctl gpu parse-smi FILE [--json]
       attestctl gpu verify-report REPORT --chain CHAIN.pem [--nonce HEX] [--rim FILE ...] [--at TIME] [--json]

inspect measures the GPUs and driver stack now (NVML, else nvidia-smi), as the daemon does each
epoch, and prints the measurement and its SHA-256. parse-smi reads \`nvidia-smi -q -x\` output.

${GPU_VERIFY_HELP}`;

export async function gpu(args: string[], o: { json: boolean; nvml?: string; chain?: string; nonce?: string; rim?: string[]; at?: string }): Promise<number> {
  const [sub, file] = args;
  try {
    switch (sub) {
      case 'inspect': {
        const e = await new GpuCollector({ nvmlLibraryPath: o.nvml, crossCheck: true }).collect();
        const out = { measurement: e.measurement, sha256: e.sha256.toString('hex'), cross_check: e.crossCheck };
        if (o.json) printJson(out);
        else {
          const m = e.measurement;
          process.stdout.write(`source ${m.source}${m.noDriverReason ? ` (${m.noDriverReason})` : ''}\ndriver ${m.driverVersion || '-'}\n`);
          for (const g of m.gpus) process.stdout.write(`gpu ${g.index} ${g.name} ${g.uuid} vbios ${g.vbiosVersion} cc ${g.ccMode}\n`);
          process.stdout.write(`sha256 ${out.sha256}\n`);
        }
        return EXIT.OK;
      }
      case 'parse-smi': {
        if (!file) break;
        const m = parseNvidiaSmiXml(await readFile(file));
        if (o.json) printJson({ measurement: m, sha256: gpuMeasurementSha256(m).toString('hex') });
        else for (const g of m.gpus) process.stdout.write(`gpu ${g.index} ${g.name} ${g.uuid} vbios ${g.vbiosVersion}\n`);
        return EXIT.OK;
      }
      case 'verify-report':
      case 'verify':
        return await gpuVerify(file, { chain: o.chain, nonce: o.nonce, rim: o.rim, at: o.at, json: o.json });
    }
  } catch (err) {
    const e = asAttestdError(err);
    if (o.json) printJson({ error: e.code, message: e.message });
    else process.stderr.write(`attestctl: ${e.code}: ${e.message}\n`);
    return EXIT.FAILURE;
  }
  process.stderr.write(`attestctl: gpu ${sub ?? ''}: see usage\n\n${GPU_HELP}\n`);
  return EXIT.USAGE;
}
