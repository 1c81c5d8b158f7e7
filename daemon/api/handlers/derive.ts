import type { attestd } from '../../gen/proto.js';
import type { Handler } from '../handler.js';
import { leaseProto, requireLeaseId } from '../lease-proto.js';
import { AttestdError } from '../../base/errors.js';
import { identifyChild } from '../child-process.js';

/** At most this many scopes or GPUs named, each of bounded length: a request is hostile bytes. */
const MAX_NAMES = 64;

function names(list: string[] | null | undefined, maxLength: number): string[] {
  const out = list ?? [];
  if (out.length > MAX_NAMES || out.some((s) => typeof s !== 'string' || s.length === 0 || s.length > maxLength)) {
    throw new AttestdError('MALFORMED_REQUEST', `at most ${MAX_NAMES} names of 1 to ${maxLength} characters`);
  }
  return out;
}

export const deriveLease: Handler<attestd.lease.v1.DeriveLeaseRequest.$Properties> = async (conn, req, ctx) => {
  const parentId = requireLeaseId(req.parentLeaseId);
  const pid = req.childPid;
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 1) throw new AttestdError('MALFORMED_REQUEST', 'child_pid required');
  const want = { scopes: names(req.scopes, 128), gpus: names(req.gpus, 64) };
  const who = await conn.identity();
  // Identified inside the manager's derive, so a refusal (not a descendant) is recorded like any other.
  const lease = await ctx.leases.derive(who, parentId, () => identifyChild(conn, who, pid), want);
  return { deriveLease: { lease: leaseProto(lease) } };
};
