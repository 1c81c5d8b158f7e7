/**
 * Who is calling, as the kernel says: what policy rules match, leases are bound to and the
 * socket layer establishes. Low in the tree so that the API, the lease manager and the policy
 * share it without importing each other.
 */
export interface WorkloadIdentity {
  pid: number;
  uid: number;
  gid: number;
  /** Process start time in clock ticks since boot (/proc/<pid>/stat field 22); pins the pid. */
  startTime: bigint;
  /** Canonical path of the executable, as /proc/<pid>/exe resolves. */
  exePath: string;
  /** SHA-256 of the executable's bytes. */
  exeSha256: Buffer;
  /** cgroup v2 path, e.g. /system.slice/trainer.service. */
  cgroup: string;
}
