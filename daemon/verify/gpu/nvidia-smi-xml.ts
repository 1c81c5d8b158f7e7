/**
 * Parses the XML of `nvidia-smi -q -x` (DTD versions 11 to 13 seen in the wild) into the GPU
 * measurement shape, for hosts where NVML cannot be loaded and for cross-checking NVML.
 *
 * The text is hostile input: its size is capped before parsing, well-formedness is checked
 * first, entities are never expanded (a DOCTYPE's internal subset is read but not applied, so
 * an entity bomb stays a few bytes), nesting depth is bounded by the parser, element names that
 * could reach Object.prototype are refused by it, and every value is read with own-property
 * checks and type checks. Every failure is AttestdError('NVIDIA_SMI_FAILED').
 *
 * nvidia-smi does not report NVML's version or the confidential-computing state: those are
 * '' and 'n/a' here. Values nvidia-smi prints as "N/A" or "Not Supported" become '' or 'n/a'.
 */
import type * as Fxp from 'fast-xml-parser';
import { lazyRequire } from '../../base/lazy-require.js';

const fxp = lazyRequire<typeof Fxp>('fast-xml-parser');
import { AttestdError } from '../../base/errors.js';
import { validateMeasurement } from './measurement-check.js';
import { CC_STATE_NOT_AVAILABLE, type GpuDevice, type GpuMeasurement, LIMITS, type Toggle } from './measurement.js';

/** Far above the output for a host with 16 GPUs and their processes (~1 MiB). */
export const MAX_NVIDIA_SMI_XML_BYTES = 8 * 1024 * 1024;

const NOT_AVAILABLE = new Set(['n/a', '[n/a]', 'not supported', '[not supported]', 'none']);
const XML_ESCAPES: Record<string, string> = { '&lt;': '<', '&gt;': '>', '&amp;': '&', '&quot;': '"', '&apos;': "'" };
const utf8 = new TextDecoder('utf-8', { fatal: true });

let parserInstance: Fxp.XMLParser | undefined;
const parser = () => (parserInstance ??= new (fxp().XMLParser)({
  processEntities: false,
  htmlEntities: false,
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  maxNestedTags: 64,
  isArray: (_name: string, jpath: unknown) => jpath === 'nvidia_smi_log.gpu',
}));

type Node = Record<string, unknown>;

function fail(message: string, cause?: unknown): never {
  throw new AttestdError('NVIDIA_SMI_FAILED', `nvidia-smi XML: ${message}`, { cause });
}

function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function child(node: Node, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(node, key) ? node[key] : undefined;
}

/** The text of node.path[0].path[1]…; undefined when absent or not a plain text element. */
function text(node: Node, ...path: string[]): string | undefined {
  let cur: unknown = node;
  for (const key of path) {
    if (!isNode(cur)) return undefined;
    cur = child(cur, key);
  }
  if (typeof cur !== 'string') return undefined;
  // Only the predefined XML escapes are decoded; nothing the document declares is applied.
  return cur.replace(/&(lt|gt|amp|quot|apos);/g, (e) => XML_ESCAPES[e] ?? e);
}

function value(node: Node, field: string, ...path: string[]): string {
  const t = text(node, ...path);
  if (t === undefined || NOT_AVAILABLE.has(t.toLowerCase())) return '';
  if (Buffer.byteLength(t, 'utf8') > LIMITS.stringBytes) fail(`${field} is longer than ${LIMITS.stringBytes} bytes`);
  return t;
}

function toggle(node: Node, field: string, ...path: string[]): Toggle {
  const t = text(node, ...path);
  if (t === undefined || NOT_AVAILABLE.has(t.toLowerCase())) return 'n/a';
  const lower = t.toLowerCase();
  if (lower === 'enabled') return 'enabled';
  if (lower === 'disabled') return 'disabled';
  return fail(`${field} has the unexpected value ${JSON.stringify(t.slice(0, 40))}`);
}

function readGpu(g: unknown, index: number): GpuDevice {
  if (!isNode(g)) fail(`gpu ${index} is not an element with children`);
  const uuid = value(g, `gpu ${index} uuid`, 'uuid');
  if (uuid === '') fail(`gpu ${index} has no uuid`);
  const busId = value(g, `gpu ${index} pci_bus_id`, 'pci', 'pci_bus_id') || value(g, `gpu ${index} id`, '@_id');
  return {
    index,
    name: value(g, `gpu ${index} product_name`, 'product_name'),
    uuid,
    serial: value(g, `gpu ${index} serial`, 'serial'),
    pciBusId: busId,
    vbiosVersion: value(g, `gpu ${index} vbios_version`, 'vbios_version'),
    inforomImageVersion: value(g, `gpu ${index} img_version`, 'inforom_version', 'img_version'),
    eccModeCurrent: toggle(g, `gpu ${index} current_ecc`, 'ecc_mode', 'current_ecc'),
    migModeCurrent: toggle(g, `gpu ${index} current_mig`, 'mig_mode', 'current_mig'),
    persistenceMode: toggle(g, `gpu ${index} persistence_mode`, 'persistence_mode'),
    ccMode: 'n/a',
  };
}

function toText(xml: string | Uint8Array): string {
  if (typeof xml === 'string') {
    if (xml.length > MAX_NVIDIA_SMI_XML_BYTES) fail(`output exceeds ${MAX_NVIDIA_SMI_XML_BYTES} bytes`);
    return xml;
  }
  if (!(xml instanceof Uint8Array)) fail('input must be a string or bytes');
  if (xml.length > MAX_NVIDIA_SMI_XML_BYTES) fail(`output exceeds ${MAX_NVIDIA_SMI_XML_BYTES} bytes`);
  try {
    return utf8.decode(xml);
  } catch (err) {
    return fail('output is not valid UTF-8', err);
  }
}

function parseTree(xml: string): Node {
  let valid: ReturnType<typeof Fxp.XMLValidator.validate>;
  try {
    valid = fxp().XMLValidator.validate(xml);
  } catch (err) {
    return fail('output could not be checked', err);
  }
  if (valid !== true) fail(`output is not well-formed XML (line ${valid.err.line}: ${valid.err.code})`);
  let tree: unknown;
  try {
    tree = parser().parse(xml);
  } catch (err) {
    // Also the parser's own refusals: nesting too deep, names like __proto__.
    return fail(`output could not be parsed: ${err instanceof Error ? err.message.slice(0, 120) : 'unknown error'}`, err);
  }
  const root = isNode(tree) ? child(tree, 'nvidia_smi_log') : undefined;
  if (!isNode(root)) fail('no <nvidia_smi_log> root element');
  return root;
}

/**
 * Parses `nvidia-smi -q -x` output. `noDriverReason` says why NVML was not used; the result
 * has no module or firmware digests and no procDriverVersion, which the collector adds.
 */
export function parseNvidiaSmiXml(xml: string | Uint8Array, noDriverReason = 'NVML was not consulted'): GpuMeasurement {
  const root = parseTree(toText(xml));
  const driverVersion = value(root, 'driver_version', 'driver_version');
  if (driverVersion === '') fail('no driver_version');
  const gpuNodes = child(root, 'gpu') ?? [];
  if (!Array.isArray(gpuNodes)) fail('unexpected <gpu> structure');
  if (gpuNodes.length > LIMITS.gpus) fail(`more than ${LIMITS.gpus} GPUs`);
  const gpus = gpuNodes.map((g, i) => readGpu(g, i));
  const m: GpuMeasurement = {
    source: 'nvidia-smi',
    noDriverReason,
    driverVersion,
    nvmlVersion: '',
    cudaDriverVersion: value(root, 'cuda_version', 'cuda_version'),
    procDriverVersion: '',
    gpus,
    ccState: { ...CC_STATE_NOT_AVAILABLE },
    moduleDigests: [],
    firmwareDigests: [],
  };
  try {
    validateMeasurement(m);
  } catch (err) {
    fail((err as Error).message, err);
  }
  return m;
}
