/**
 * The OCI runtime state a runtime hands its hooks on stdin (runtime-spec, "State"): ociVersion,
 * id, status, pid, bundle, annotations. The bytes come from the runtime, but the id, bundle
 * and annotations were chosen by whoever submitted the container, so everything is checked:
 * the size before parsing, then each field's type, length and characters.
 */

/** Larger than any real state: a runtime's annotations are bounded by the spec's own size. */
export const MAX_STATE_BYTES = 256 * 1024;
const MAX_ID = 1024;
const MAX_PATH = 4096;
const MAX_ANNOTATIONS = 1024;
const MAX_ANNOTATION_VALUE = 16 * 1024;

/** The annotation a container sets to name the policy rule its start is gated on. */
export const RULE_ANNOTATION = 'attestd.io/rule';
/** Policy rule names: 1 to 64 of a-z, 0-9, _ and - (docs/policy.md). */
const RULE_NAME = /^[a-z0-9_-]{1,64}$/;
/** Container ids as runtimes write them, and safe as a file name. */
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;
const STATUSES = new Set(['creating', 'created', 'running', 'stopped']);

export interface OciState {
  ociVersion: string;
  id: string;
  status: string;
  /** The container's init process on the host; present from "created" on. */
  pid?: number;
  bundle: string;
  annotations: Record<string, string>;
}

/** Why an input is not an OCI state; the message names the field. */
export class OciStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OciStateError';
  }
}

/**
 * Parses and checks an OCI state document:
 * - at most MAX_STATE_BYTES bytes, UTF-8 JSON, a single object;
 * - ociVersion: a non-empty string of at most 64 characters;
 * - id: 1 to 1024 characters from A-Z a-z 0-9 _ . + -, not starting with a punctuation mark;
 * - status: creating, created, running or stopped;
 * - pid: absent, or an integer from 1 to 2^22 (the kernel's pid_max limit);
 * - bundle: an absolute path of at most 4096 characters without NUL;
 * - annotations: absent or an object of at most 1024 entries, keys of at most 1024 characters,
 *   string values of at most 16 KiB.
 * Unknown fields are ignored (later runtime-spec versions may add some).
 */
export function parseOciState(bytes: Uint8Array): OciState {
  if (bytes.length > MAX_STATE_BYTES) throw new OciStateError(`state is larger than ${MAX_STATE_BYTES} bytes`);
  if (bytes.length === 0) throw new OciStateError('no state on standard input');
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new OciStateError(`state is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw new OciStateError('state is not a JSON object');

  const ociVersion = str(doc, 'ociVersion', 64);
  const id = str(doc, 'id', MAX_ID);
  if (!CONTAINER_ID.test(id)) throw new OciStateError('id holds characters a container id cannot have');
  const status = str(doc, 'status', 16);
  if (!STATUSES.has(status)) throw new OciStateError('status is not creating, created, running or stopped');
  const bundle = str(doc, 'bundle', MAX_PATH);
  if (!bundle.startsWith('/') || bundle.includes('\0')) throw new OciStateError('bundle is not an absolute path');

  let pid: number | undefined;
  if (doc.pid !== undefined) {
    if (typeof doc.pid !== 'number' || !Number.isInteger(doc.pid) || doc.pid < 1 || doc.pid > 4_194_304) {
      throw new OciStateError('pid is not a process id');
    }
    pid = doc.pid;
  }

  let annotations: Record<string, string> = {};
  if (doc.annotations !== undefined) {
    if (!isObject(doc.annotations)) throw new OciStateError('annotations is not an object');
    const entries = Object.entries(doc.annotations);
    if (entries.length > MAX_ANNOTATIONS) throw new OciStateError(`more than ${MAX_ANNOTATIONS} annotations`);
    for (const [key, value] of entries) {
      if (key.length > MAX_ID) throw new OciStateError(`an annotation key is longer than ${MAX_ID} characters`);
      if (typeof value !== 'string' || value.length > MAX_ANNOTATION_VALUE) {
        throw new OciStateError('an annotation value is not a string of at most 16 KiB');
      }
    }
    // fromEntries defines own properties: a "__proto__" key stays a key, not a prototype.
    annotations = Object.fromEntries(entries) as Record<string, string>;
  }
  return { ociVersion, id, status, pid, bundle, annotations };
}

/**
 * The rule a container asks to be gated on: its `attestd.io/rule` annotation, else the
 * fallback. Returns undefined when neither names one (the daemon then picks the first rule
 * that matches the hook). A malformed rule name is refused rather than passed on.
 */
export function requestedRule(state: OciState, fallback?: string): string | undefined {
  const rule = Object.prototype.hasOwnProperty.call(state.annotations, RULE_ANNOTATION) ? state.annotations[RULE_ANNOTATION] : fallback;
  if (rule === undefined || rule === '') return undefined;
  if (!RULE_NAME.test(rule)) throw new OciStateError(`${RULE_ANNOTATION} is not a policy rule name (a-z, 0-9, _ and -, 1 to 64)`);
  return rule;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(doc: Record<string, unknown>, field: string, max: number): string {
  const v = doc[field];
  if (typeof v !== 'string' || v.length === 0) throw new OciStateError(`${field} is missing or not a non-empty string`);
  if (v.length > max) throw new OciStateError(`${field} is longer than ${max} characters`);
  return v;
}
