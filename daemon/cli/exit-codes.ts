/**
 * attestctl exit codes. Stable: documented in docs/attestctl.md, never renumbered; a new
 * condition gets a new number.
 */
export const EXIT = {
  OK: 0,
  FAILURE: 1,            // unexpected failure
  USAGE: 2,              // bad command line
  UNREACHABLE: 3,        // the daemon's socket could not be reached, or closed mid-call
  REFUSED: 4,            // the daemon refused the request (its error code is printed)
  POLICY_INVALID: 5,     // policy check found problems
  TOKEN_INVALID: 6,      // lease verify: the token does not verify or the lease is not live
  NOT_TRUSTED: 7,        // status: the host is not TRUSTED
  AUDIT_FAILED: 8,       // audit verify, check-inclusion, cvm verify-*: the log, proof or report does not verify
  ENROLL_FAILED: 9,      // enroll: a challenge, response or certificate does not verify or match
  LEASE_LOST: 88,        // run: the child was stopped because its lease was revoked, expired or could not be renewed
} as const;
