/**
 * Compares what NVML and nvidia-smi report about the same host. Both read the same driver, so
 * any difference means one of them is not telling the truth about it (a shimmed library, a
 * wrapped binary, a GPU that fell off the bus between the two reads).
 *
 * Only facts that both sources report are compared: nvmlVersion and the confidential-computing
 * state come from NVML alone. GPUs are matched by UUID, not by index, as the two may number
 * them differently.
 */
import type { GpuDevice, GpuMeasurement } from './measurement.js';

const GPU_FIELDS = [
  'name', 'serial', 'pciBusId', 'vbiosVersion', 'inforomImageVersion', 'eccModeCurrent',
  'migModeCurrent', 'persistenceMode',
] as const satisfies readonly (keyof GpuDevice)[];

function same(field: string, a: string, b: string): boolean {
  // nvidia-smi and NVML agree on the bus id format today; hex case is not worth a mismatch.
  return field === 'pciBusId' ? a.toUpperCase() === b.toUpperCase() : a === b;
}

/**
 * The fields that differ, as sorted paths: "driverVersion", "gpus.count",
 * "gpus[GPU-…].vbiosVersion", "gpus[GPU-…].missing-in-nvidia-smi" and so on. Empty when the
 * two agree on everything both report.
 */
export function crossCheckGpuMeasurements(nvml: GpuMeasurement, smi: GpuMeasurement): string[] {
  const out: string[] = [];
  if (nvml.driverVersion !== smi.driverVersion) out.push('driverVersion');
  if (nvml.cudaDriverVersion !== smi.cudaDriverVersion) out.push('cudaDriverVersion');
  if (nvml.gpus.length !== smi.gpus.length) out.push('gpus.count');

  const smiByUuid = new Map<string, GpuDevice>();
  for (const g of smi.gpus) smiByUuid.set(g.uuid, g);
  const seen = new Set<string>();
  for (const g of nvml.gpus) {
    seen.add(g.uuid);
    const other = smiByUuid.get(g.uuid);
    if (other === undefined) {
      out.push(`gpus[${g.uuid}].missing-in-nvidia-smi`);
      continue;
    }
    for (const f of GPU_FIELDS) {
      if (!same(f, g[f], other[f])) out.push(`gpus[${g.uuid}].${f}`);
    }
  }
  for (const g of smi.gpus) {
    if (!seen.has(g.uuid)) out.push(`gpus[${g.uuid}].missing-in-nvml`);
  }
  return [...new Set(out)].sort();
}
