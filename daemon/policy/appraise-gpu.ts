/**
 * Appraisal of the GPU measurement against the policy's gpu section. Pure. Each reason
 * about one GPU carries its uuid in `gpu`, so the daemon can revoke only the leases that
 * name a drifted GPU; a reason without `gpu` concerns the whole host (driver, modules,
 * firmware, system-wide CC state) and affects every lease.
 */
import type { GpuDevice, GpuMeasurement } from '../verify/gpu/measurement.js';
import type { Reason } from '../base/reason.js';
import { normaliseGpuUuid } from './build-v2.js';
import type { GpuPolicy } from './types.js';

function gpuName(g: GpuDevice): string {
  return `GPU ${g.index} (${g.uuid}, ${g.name})`;
}

function baseName(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? path : path.slice(slash + 1);
}

/** Adds a reason; one about a single GPU names its uuid. */
type Add = (code: string, message: string, uuid?: string) => void;

/**
 * Reasons the GPUs and driver fall short of `gpu`. Checks, in order:
 * - required: a driver answered (source is not 'none'), else GPU_DRIVER_MISSING naming why;
 *   without a driver and not required, nothing else is checked;
 * - driver_versions: the driver version is listed (GPU_DRIVER_VERSION);
 * - pinned_uuids: exactly the pinned GPUs are present; a missing one and an unpinned one are
 *   both GPU_UUID_NOT_PINNED, naming the uuid;
 * - per GPU, by index: vbios_versions for its product name (GPU_VBIOS_NOT_ALLOWED, also when
 *   its product has no entry), cc_mode (GPU_CC_MODE), dev_tools (GPU_DEV_TOOLS), ecc
 *   (GPU_ECC_DISABLED);
 * - dev_tools: forbidden also refuses system-wide developer-tools mode (GPU_DEV_TOOLS);
 * - module_digests: each listed module is loaded from a file with an allowed digest
 *   (GPU_MODULE_MISSING, GPU_MODULE_DIGEST); unlisted modules are not checked;
 * - firmware_digests: each listed file name is present and every file of that name has an
 *   allowed digest (GPU_FIRMWARE_MISSING, GPU_FIRMWARE_DIGEST).
 */
export function appraiseGpu(gpu: GpuPolicy, m: GpuMeasurement): Reason[] {
  const reasons: Reason[] = [];
  const add: Add = (code, message, uuid) => {
    reasons.push(uuid === undefined ? { code, message } : { code, message, gpu: uuid });
  };
  if (m.source === 'none') {
    if (gpu.required) add('GPU_DRIVER_MISSING', `no NVIDIA driver answered: ${m.noDriverReason ?? 'no reason given'}; policy requires GPUs`);
    return reasons;
  }
  if (gpu.driverVersions !== undefined && !gpu.driverVersions.includes(m.driverVersion)) {
    add('GPU_DRIVER_VERSION', `driver version ${m.driverVersion || '(none reported)'} is not allowed; policy allows ${gpu.driverVersions.join(', ')}`);
  }
  const gpus = [...m.gpus].sort((a, b) => a.index - b.index);
  if (gpu.pinnedUuids !== undefined) pinnedGpus(gpu.pinnedUuids, gpus, add);
  for (const g of gpus) deviceReasons(gpu, g, add);
  if (gpu.devTools === 'forbidden' && m.ccState.devToolsMode === 'on' && !gpus.some((g) => g.ccMode === 'devtools')) {
    add('GPU_DEV_TOOLS', 'the system is in confidential-computing developer-tools mode; policy forbids it');
  }
  for (const [name, allowed] of gpu.moduleDigests ?? []) moduleReasons(name, allowed, m, add);
  for (const [file, allowed] of gpu.firmwareDigests ?? []) firmwareReasons(file, allowed, m, add);
  return reasons;
}

/** Exactly the pinned GPUs are present: each missing one, then each unpinned one (GPU_UUID_NOT_PINNED). */
function pinnedGpus(pinnedUuids: readonly string[], gpus: readonly GpuDevice[], add: Add): void {
  const present = new Set(gpus.map((g) => g.uuid.toLowerCase()));
  const pinned = new Set(pinnedUuids.map((u) => u.toLowerCase()));
  for (const uuid of pinnedUuids) {
    if (!present.has(uuid.toLowerCase())) add('GPU_UUID_NOT_PINNED', `pinned GPU ${uuid} is not present`, uuid);
  }
  for (const g of gpus) {
    if (!pinned.has(g.uuid.toLowerCase())) add('GPU_UUID_NOT_PINNED', `${gpuName(g)} is not a pinned GPU`, g.uuid);
  }
}

/**
 * One GPU, in this order: a VBIOS version allowed for its product (GPU_VBIOS_NOT_ALLOWED),
 * cc_mode (GPU_CC_MODE), dev_tools (GPU_DEV_TOOLS), ecc (GPU_ECC_DISABLED).
 */
function deviceReasons(gpu: GpuPolicy, g: GpuDevice, add: Add): void {
  if (gpu.vbiosVersions !== undefined) {
    const allowed = gpu.vbiosVersions.get(g.name);
    if (allowed === undefined) {
      add('GPU_VBIOS_NOT_ALLOWED', `${gpuName(g)}: policy lists no VBIOS versions for product ${JSON.stringify(g.name)}`, g.uuid);
    } else if (!allowed.includes(g.vbiosVersion.toLowerCase())) {
      add('GPU_VBIOS_NOT_ALLOWED', `${gpuName(g)} VBIOS ${g.vbiosVersion || '(none reported)'} is not allowed; policy allows ${allowed.join(', ')}`, g.uuid);
    }
  }
  if (gpu.ccMode === 'on' && g.ccMode !== 'on') {
    add('GPU_CC_MODE', `${gpuName(g)} confidential-computing mode is ${g.ccMode}; policy requires on`, g.uuid);
  } else if (gpu.ccMode === 'off' && g.ccMode !== 'off' && g.ccMode !== 'n/a') {
    add('GPU_CC_MODE', `${gpuName(g)} confidential-computing mode is ${g.ccMode}; policy requires off`, g.uuid);
  }
  if (gpu.devTools === 'forbidden' && g.ccMode === 'devtools') {
    add('GPU_DEV_TOOLS', `${gpuName(g)} runs in developer-tools mode; policy forbids it`, g.uuid);
  }
  if (gpu.ecc === 'required' && g.eccModeCurrent !== 'enabled') {
    add('GPU_ECC_DISABLED', `${gpuName(g)} ECC is ${g.eccModeCurrent}; policy requires it enabled`, g.uuid);
  }
}

/**
 * Kernel module `name` is loaded (GPU_MODULE_MISSING), and from a file with an `allowed`
 * digest (GPU_MODULE_DIGEST).
 */
function moduleReasons(name: string, allowed: readonly Buffer[], m: GpuMeasurement, add: Add): void {
  const loaded = m.moduleDigests.filter((d) => d.name === name);
  if (loaded.length === 0) add('GPU_MODULE_MISSING', `kernel module ${name} is not loaded; policy pins its digest`);
  for (const d of loaded) {
    if (d.sha256 === '') add('GPU_MODULE_DIGEST', `kernel module ${name} is loaded but its file was not found to hash`);
    else if (!allowed.some((a) => a.toString('hex') === d.sha256.toLowerCase())) {
      add('GPU_MODULE_DIGEST', `kernel module ${name} (${d.path}) sha256 ${d.sha256} is not in the allowed set`);
    }
  }
}

/**
 * A firmware file named `file` was measured (GPU_FIRMWARE_MISSING), and every one of that
 * name has an `allowed` digest (GPU_FIRMWARE_DIGEST).
 */
function firmwareReasons(file: string, allowed: readonly Buffer[], m: GpuMeasurement, add: Add): void {
  const found = m.firmwareDigests.filter((d) => baseName(d.path) === file);
  if (found.length === 0) add('GPU_FIRMWARE_MISSING', `firmware file ${file} was not measured; policy pins its digest`);
  for (const d of found) {
    if (!allowed.some((a) => a.toString('hex') === d.sha256.toLowerCase())) {
      add('GPU_FIRMWARE_DIGEST', `firmware ${d.path} sha256 ${d.sha256} is not in the allowed set`);
    }
  }
}

/**
 * Reasons about one GPU, keyed by its uuid in normal form ("GPU-" + lowercase hex, as
 * resolveRuleGpus and the measurement spell it); `host` holds those that concern every GPU.
 */
export function gpuReasonsByUuid(reasons: readonly Reason[]): { host: Reason[]; byGpu: Map<string, Reason[]> } {
  const host: Reason[] = [];
  const byGpu = new Map<string, Reason[]>();
  for (const r of reasons) {
    if (r.gpu === undefined) {
      host.push(r);
      continue;
    }
    const key = normaliseGpuUuid(r.gpu);
    const list = byGpu.get(key) ?? [];
    list.push(r);
    byGpu.set(key, list);
  }
  return { host, byGpu };
}
