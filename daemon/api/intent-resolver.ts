/**
 * Resolving an AcquireLease request's execution intent into what the daemon vouches for:
 * artifacts named by path are opened and hashed by the daemon itself (measured), those given
 * by digest only are kept as declared; the command line is read from the kernel, never from
 * the request. Everything is bounded before any file is opened (verify/intent/bounds.ts).
 *
 * The daemon opens artifacts as its own user, so it checks that the caller could read the
 * file itself (owner, group or other read bit against the caller's uid and primary gid; root
 * may read anything): a caller cannot learn the digest of a file it may not read.
 */
import { constants, openSync, closeSync, fstatSync, readSync, type BigIntStats } from 'node:fs';
import type { attestd } from '../gen/proto.js';
import { AttestdError, asAttestdError } from '../base/errors.js';
import type { WorkloadIdentity } from '../base/workload-identity.js';
import * as native from '../native.js';
import { canonicalIntent, type ResolvedArtifact, type ResolvedIntent } from '../verify/intent/codec.js';
import { checkIntentBounds, INTENT_LIMITS } from '../verify/intent/bounds.js';
import type { Peer } from './peer.js';
import { ExeDigestCache, exeKey } from './exe-digests.js';

/** The largest artifact the daemon hashes (model weights run to tens of GiB), and the most per request. */
export const MAX_ARTIFACT_BYTES = 64 * 1024 ** 3;
export const MAX_INTENT_BYTES = 256 * 1024 ** 3;

type IntentRequest = attestd.lease.v1.Intent.$Properties;

/**
 * Digests of artifacts by the fstat of the descriptor hashed (as for executables, see
 * exe-digests.ts): a model loaded by many jobs is hashed once per version of the file, and
 * concurrent requests for one file share one hash. At most 256 hashes wait at once.
 */
const artifactDigests = new ExeDigestCache(256, (fd) => native.hashExecutable(fd, 'sha256', MAX_ARTIFACT_BYTES));

/** The caller's intent resolved, or an INTENT_* refusal. */
export async function resolveIntent(req: IntentRequest, who: WorkloadIdentity, peer: Pick<Peer, 'pid' | 'pidfd'>): Promise<ResolvedIntent> {
  const stated = statedIntent(req);
  // Bounds first (a zero digest stands in for each one to measure), so nothing is hashed in vain.
  checkIntentBounds(canonicalIntent(stated));
  let total = 0;
  for (const a of stated.artifacts) {
    if (!a.measured) continue;
    const { digest, size } = await measure(a.path!, who);
    total += size;
    if (total > MAX_INTENT_BYTES) throw new AttestdError('INTENT_ARTIFACT_TOO_LARGE', `artifacts over ${MAX_INTENT_BYTES} bytes in all`);
    a.sha256 = digest;
  }
  return canonicalIntent({ ...stated, cmdline: readCmdline(peer) });
}

/** The request as an intent: names defaulted, exactly one of path and digest per artifact. */
function statedIntent(req: IntentRequest): ResolvedIntent {
  const raw = req.artifacts ?? [];
  if (raw.length > INTENT_LIMITS.artifacts) throw new AttestdError('INTENT_MALFORMED', `more than ${INTENT_LIMITS.artifacts} artifacts`);
  const artifacts = raw.map((a): ResolvedArtifact => {
    const path = a.path ?? '';
    const sha = a.sha256 ?? new Uint8Array();
    if ((path === '') === (sha.length === 0)) throw new AttestdError('INTENT_MALFORMED', 'each artifact needs exactly one of path and sha256');
    const name = a.name || path || Buffer.from(sha).toString('hex');
    return path ? { name, path, sha256: Buffer.alloc(32), measured: true } : { name, sha256: Buffer.from(sha), measured: false };
  });
  const labels = Object.entries(req.labels ?? {});
  if (labels.length > INTENT_LIMITS.labels) throw new AttestdError('INTENT_MALFORMED', `more than ${INTENT_LIMITS.labels} labels`);
  return { artifacts, imageDigest: req.imageDigest ?? '', cmdline: [], jobId: req.jobId ?? '', labels };
}

/** Opens `path` as the daemon, refuses what is not a regular file the caller may read, and hashes it. */
async function measure(path: string, who: WorkloadIdentity): Promise<{ digest: Buffer; size: number }> {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    fd = openSync(path, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
  } catch (err) {
    throw new AttestdError('INTENT_ARTIFACT_UNREADABLE', `${path}: ${(err as NodeJS.ErrnoException).code ?? 'cannot open'}`);
  }
  try {
    const st = fstatSync(fd, { bigint: true });
    if (!st.isFile()) throw new AttestdError('INTENT_ARTIFACT_UNREADABLE', `${path}: not a regular file`);
    if (!callerMayRead(st, who)) throw new AttestdError('INTENT_ARTIFACT_UNREADABLE', `${path}: not readable by the caller`);
    if (st.size > BigInt(MAX_ARTIFACT_BYTES)) throw new AttestdError('INTENT_ARTIFACT_TOO_LARGE', `${path}: over ${MAX_ARTIFACT_BYTES} bytes`);
    // The cache refuses a digest of another version of the file than the one checked above.
    const digest = await artifactDigests.get(exeKey(st), fd).catch((err: unknown) => {
      const e = asAttestdError(err);
      throw new AttestdError(e.code === 'EXE_TOO_LARGE' ? 'INTENT_ARTIFACT_TOO_LARGE' : 'INTENT_ARTIFACT_UNREADABLE', `${path}: ${e.message}`);
    });
    return { digest, size: Number(st.size) };
  } finally {
    closeSync(fd);
  }
}

function callerMayRead(st: BigIntStats, who: WorkloadIdentity): boolean {
  const mode = Number(st.mode);
  if (who.uid === 0) return true;
  if (BigInt(who.uid) === st.uid) return (mode & 0o400) !== 0;
  if (BigInt(who.gid) === st.gid) return (mode & 0o040) !== 0;
  return (mode & 0o004) !== 0;
}

/**
 * The caller's argv from /proc/PID/cmdline (world-readable, no capability needed), bounded;
 * then the pidfd must still be alive, so the pid named the caller throughout the read.
 */
function readCmdline(peer: Pick<Peer, 'pid' | 'pidfd'>): string[] {
  const buf = Buffer.alloc(INTENT_LIMITS.cmdlineBytes + 1);
  let length = 0;
  let fd: number;
  try {
    fd = openSync(`/proc/${peer.pid}/cmdline`, 'r');
  } catch {
    throw new AttestdError('PEER_UNIDENTIFIED', 'the command line of the caller cannot be read');
  }
  try {
    for (let n = 1; n > 0 && length < buf.length; length += n) n = readSync(fd, buf, length, buf.length - length, null);
  } finally {
    closeSync(fd);
  }
  if (!native.pidfdIsAlive(peer.pidfd)) throw new AttestdError('PEER_UNIDENTIFIED', 'the caller exited');
  if (length > INTENT_LIMITS.cmdlineBytes) throw new AttestdError('INTENT_MALFORMED', `a command line of more than ${INTENT_LIMITS.cmdlineBytes} bytes`);
  const text = buf.subarray(0, length).toString('utf8');
  const args = text.split('\0');
  if (text.endsWith('\0')) args.pop();
  if (args.length > INTENT_LIMITS.cmdlineArgs) throw new AttestdError('INTENT_MALFORMED', `a command line of more than ${INTENT_LIMITS.cmdlineArgs} arguments`);
  return text === '' ? [] : args;
}
