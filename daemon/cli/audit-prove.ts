/** attestctl audit prove inclusion SEQ | consistency OLD NEW, and audit check-inclusion. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readLeaves } from '../audit/leaves.js';
import { CHECKPOINT_FILE } from '../audit/segments.js';
import { consistencyProof, inclusionProof, treeRoot, verifyInclusion } from '../verify/merkle/proof.js';
import { parseCheckpoint } from '../verify/checkpoint.js';
import { asAttestdError } from '../base/errors.js';
import { EXIT } from './exit-codes.js';
import { printJson } from './output.js';

export const AUDIT_PROVE_HELP = `Usage: attestctl audit prove inclusion SEQ [--dir DIR] [--size N] [--json]
       attestctl audit prove consistency OLD NEW [--dir DIR] [--json]
       attestctl audit check-inclusion --leaf-hash H --index I --size N --root R --proof H1,H2,... [--json]

prove prints RFC 6962 proofs from a log folder (default the published checkpoint's size);
check-inclusion verifies one, with hashes in hex or base64, against a root published elsewhere.
Exit codes: 0 proof printed or verified, 8 the proof does not verify, 2 usage, 1 unreadable input.`;

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function parseCount(s: string | undefined): number | undefined {
  return s !== undefined && /^\d{1,15}$/.test(s) ? Number(s) : undefined;
}

async function publishedSize(dir: string): Promise<number | undefined> {
  const note = await readFile(join(dir, CHECKPOINT_FILE), 'utf8').catch(() => undefined);
  if (!note) return undefined;
  // Only its size is used, to choose a default; the signature is the verifier's business.
  return parseCheckpoint(note.slice(0, note.lastIndexOf('\n\n') + 1)).size;
}

export async function auditProve(args: string[], opts: { dir: string; size?: string; json: boolean }): Promise<number> {
  const [kind, a, b] = args;
  const leaves = await readLeaves(opts.dir);
  const n = leaves.hashes.length;
  if (kind === 'inclusion') {
    const index = parseCount(a);
    const size = opts.size !== undefined ? parseCount(opts.size) : ((await publishedSize(opts.dir)) ?? n);
    if (index === undefined || size === undefined || size > n || index >= size) {
      process.stderr.write(`attestctl: need 0 <= SEQ < size <= ${n}\n\n${AUDIT_PROVE_HELP}\n`);
      return EXIT.USAGE;
    }
    const proof = inclusionProof(leaves.hashes, index, size);
    const out = { leaf_hash: hex(leaves.hashes[index]!), index, size, root: hex(treeRoot(leaves.hashes, size)), proof: proof.map(hex) };
    if (opts.json) printJson(out);
    else process.stdout.write(`leaf hash ${out.leaf_hash}\nindex ${index}\nsize ${size}\nroot ${out.root}\nproof ${out.proof.join(',')}\n`);
    return EXIT.OK;
  }
  if (kind === 'consistency') {
    const oldSize = parseCount(a);
    const newSize = parseCount(b);
    // RFC 6962 defines consistency only from a non-empty tree.
    if (oldSize === undefined || newSize === undefined || oldSize < 1 || oldSize > newSize || newSize > n) {
      process.stderr.write(`attestctl: need 1 <= OLD <= NEW <= ${n}\n\n${AUDIT_PROVE_HELP}\n`);
      return EXIT.USAGE;
    }
    const proof = consistencyProof(leaves.hashes, oldSize, newSize);
    const out = { old_size: oldSize, new_size: newSize, old_root: hex(treeRoot(leaves.hashes, oldSize)), new_root: hex(treeRoot(leaves.hashes, newSize)), proof: proof.map(hex) };
    if (opts.json) printJson(out);
    else process.stdout.write(`old ${oldSize} ${out.old_root}\nnew ${newSize} ${out.new_root}\nproof ${out.proof.join(',')}\n`);
    return EXIT.OK;
  }
  process.stderr.write(`attestctl: unknown proof kind: ${kind ?? '(none)'}\n\n${AUDIT_PROVE_HELP}\n`);
  return EXIT.USAGE;
}

/** A 32-byte hash from hex or base64; undefined otherwise. */
function hash(s: string | undefined): Buffer | undefined {
  if (!s) return undefined;
  if (/^[0-9a-fA-F]{64}$/.test(s)) return Buffer.from(s, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(s)) {
    const b = Buffer.from(s, s.includes('-') || s.includes('_') ? 'base64url' : 'base64');
    return b.length === 32 ? b : undefined;
  }
  return undefined;
}

export function checkInclusion(o: { leafHash?: string; index?: string; size?: string; root?: string; proof?: string; json: boolean }): number {
  const leaf = hash(o.leafHash);
  const root = hash(o.root);
  const index = parseCount(o.index);
  const size = parseCount(o.size);
  const proofParts = o.proof === undefined || o.proof === '' ? [] : o.proof.split(',');
  const proof = proofParts.map(hash);
  if (!leaf || !root || index === undefined || size === undefined || proof.some((p) => !p)) {
    process.stderr.write(`attestctl: check-inclusion needs --leaf-hash, --index, --size, --root and --proof with 32-byte hashes in hex or base64\n\n${AUDIT_PROVE_HELP}\n`);
    return EXIT.USAGE;
  }
  try {
    verifyInclusion(leaf, index, size, proof as Buffer[], root);
  } catch (err) {
    const e = asAttestdError(err);
    if (o.json) printJson({ verified: false, error: e.code, message: e.message });
    else process.stdout.write(`does not verify: ${e.message}\n`);
    return EXIT.AUDIT_FAILED;
  }
  if (o.json) printJson({ verified: true, index, size });
  else process.stdout.write(`verified: leaf ${index} is in the tree of size ${size} with that root\n`);
  return EXIT.OK;
}
