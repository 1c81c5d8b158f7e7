/**
 * A description of the host for operators and the audit log: OS, kernel, CPU, memory and the
 * graphics controllers the OS sees, gathered with systeminformation. It is context, not
 * evidence: nothing here is bound into the quote, because values such as free memory change
 * every second and the GPU facts that matter are measured through NVML.
 */
import type Si from 'systeminformation';
import { lazyRequire } from '../../base/lazy-require.js';

const systeminformation = lazyRequire<typeof Si>('systeminformation');
import { AttestdError } from '../../base/errors.js';

export interface HostInventory {
  os: { platform: string; distro: string; release: string; kernel: string; arch: string; hostname: string };
  cpu: { manufacturer: string; brand: string; cores: number; physicalCores: number; sockets: number };
  memory: { totalBytes: number };
  graphics: { vendor: string; model: string; bus: string; pciBusId: string; vramMiB: number | null; driverVersion: string }[];
}

export const DEFAULT_INVENTORY_TIMEOUT_MS = 20_000;

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AttestdError('INTERNAL', `host inventory took longer than ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

async function gather(): Promise<HostInventory> {
  const si = systeminformation();
  const [os, cpu, mem, graphics] = await Promise.all([si.osInfo(), si.cpu(), si.mem(), si.graphics()]);
  return {
    os: { platform: os.platform, distro: os.distro, release: os.release, kernel: os.kernel, arch: os.arch, hostname: os.hostname },
    cpu: {
      manufacturer: cpu.manufacturer, brand: cpu.brand, cores: cpu.cores, physicalCores: cpu.physicalCores,
      sockets: Number(cpu.processors) || 1,
    },
    memory: { totalBytes: mem.total },
    graphics: graphics.controllers.map((c) => ({
      vendor: c.vendor ?? '', model: c.model ?? '', bus: c.bus ?? '', pciBusId: c.pciBus ?? c.busAddress ?? '',
      vramMiB: c.vram ?? null, driverVersion: c.driverVersion ?? '',
    })),
  };
}

/** The inventory, or INTERNAL when systeminformation fails or takes longer than `timeoutMs`. */
export async function collectHostInventory(timeoutMs = DEFAULT_INVENTORY_TIMEOUT_MS): Promise<HostInventory> {
  try {
    return await withDeadline(gather(), timeoutMs);
  } catch (err) {
    if (err instanceof AttestdError) throw err;
    throw new AttestdError('INTERNAL', `host inventory failed: ${(err as Error).message}`, { cause: err });
  }
}
