/**
 * The bounds of an execution intent, the same for a request, a resolved intent and a recorded
 * one: a client cannot make the daemon hash, store or sign more than this.
 */
import { AttestdError } from '../../base/errors.js';

export const INTENT_LIMITS = {
  artifacts: 64,
  nameBytes: 1024,
  pathBytes: 1024,
  jobIdBytes: 255,
  labels: 16,
  labelKeyBytes: 64,
  labelValueBytes: 256,
  /** Arguments of the command line the kernel holds, and their bytes in all (NULs included). */
  cmdlineArgs: 4096,
  cmdlineBytes: 128 * 1024,
  maxEncodedBytes: 512 * 1024,
} as const;

export const IMAGE_DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;
const PRINTABLE = /^[\x20-\x7e]*$/;

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

function malformed(message: string): never {
  throw new AttestdError('INTENT_MALFORMED', message);
}

/** Each value within bounds, names and label keys unique and in canonical order. */
export function checkIntentBounds(i: {
  artifacts: { name: string; path?: string; sha256: Uint8Array; measured: boolean }[];
  imageDigest: string; cmdline: string[]; jobId: string; labels: [string, string][];
}): void {
  if (i.artifacts.length > INTENT_LIMITS.artifacts) malformed(`more than ${INTENT_LIMITS.artifacts} artifacts`);
  let previous: Buffer | undefined;
  for (const a of i.artifacts) {
    const name = Buffer.from(a.name, 'utf8');
    if (name.length === 0 || name.length > INTENT_LIMITS.nameBytes) malformed(`an artifact name must be 1 to ${INTENT_LIMITS.nameBytes} bytes`);
    if (previous && Buffer.compare(previous, name) >= 0) malformed(`artifact "${a.name}" is named twice or out of order`);
    previous = name;
    if (a.measured !== (a.path !== undefined)) malformed(`artifact "${a.name}": a path exactly when measured`);
    if (a.path !== undefined && (!a.path.startsWith('/') || bytes(a.path) > INTENT_LIMITS.pathBytes)) {
      malformed(`artifact "${a.name}": the path must be absolute and at most ${INTENT_LIMITS.pathBytes} bytes`);
    }
    if (a.sha256.length !== 32) malformed(`artifact "${a.name}": the digest must be 32 bytes`);
  }
  if (i.imageDigest !== '' && !IMAGE_DIGEST_PATTERN.test(i.imageDigest)) malformed('image_digest must be "sha256:" and 64 lowercase hex characters');
  checkCmdline(i.cmdline);
  if (!PRINTABLE.test(i.jobId) || i.jobId.length > INTENT_LIMITS.jobIdBytes) malformed(`job_id must be at most ${INTENT_LIMITS.jobIdBytes} printable ASCII characters`);
  checkLabels(i.labels);
}

function checkCmdline(args: string[]): void {
  if (args.length > INTENT_LIMITS.cmdlineArgs) malformed(`a command line of more than ${INTENT_LIMITS.cmdlineArgs} arguments`);
  let total = 0;
  for (const a of args) total += bytes(a) + 1;
  if (total > INTENT_LIMITS.cmdlineBytes) malformed(`a command line of more than ${INTENT_LIMITS.cmdlineBytes} bytes`);
}

function checkLabels(labels: [string, string][]): void {
  if (labels.length > INTENT_LIMITS.labels) malformed(`more than ${INTENT_LIMITS.labels} labels`);
  let previous: Buffer | undefined;
  for (const [k, v] of labels) {
    const key = Buffer.from(k, 'utf8');
    if (key.length === 0 || key.length > INTENT_LIMITS.labelKeyBytes) malformed(`a label key must be 1 to ${INTENT_LIMITS.labelKeyBytes} bytes`);
    if (previous && Buffer.compare(previous, key) >= 0) malformed(`label "${k}" is given twice or out of order`);
    previous = key;
    if (bytes(v) > INTENT_LIMITS.labelValueBytes) malformed(`label "${k}": the value is over ${INTENT_LIMITS.labelValueBytes} bytes`);
  }
}
