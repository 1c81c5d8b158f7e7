/**
 * The one error model of attestd. Every failure that crosses a module, the native
 * boundary or the socket carries a stable string code from ERROR_CODES. Callers match on
 * `code`, never on message text. Codes are never renamed or reused once released; a
 * retired code stays in this table marked as such. `docs/errors.md` lists the same codes
 * and a test keeps the two in step.
 */

export const ERROR_CODES = {
  // General
  INVALID_ARGUMENT: 'a caller passed a value outside what the function accepts',
  INTERNAL: 'an unexpected internal failure; details are in the operator log',

  // Native core
  NATIVE_UNAVAILABLE: 'the compiled native core could not be loaded',
  NATIVE_KEY_CLOSED: 'the session key was used after close()',
  NATIVE_MEMORY_LOCK_FAILED: 'locked, non-dumpable memory for key material could not be obtained',
  NATIVE_CRYPTO_FAILED: 'an OpenSSL operation inside the native core failed',
  NATIVE_IO_FAILED: 'a file could not be opened or read by the native core',
  NATIVE_PEERCRED_FAILED: 'peer credentials of a Unix socket could not be read',
  NATIVE_PIDFD_FAILED: 'a pidfd for the peer process could not be opened',
  PROC_OPENER_FAILED: 'the /proc opener (attestd-proc-opener) refused a request, answered out of shape or is gone',
  PRIVILEGE_NOT_DROPPED: 'the daemon still holds CAP_SYS_PTRACE, which only the /proc opener may hold',

  // TPM
  TPM_LIBRARY_MISSING: 'the tpm2-tss libraries could not be loaded',
  TPM_TCTI_INVALID: 'the TCTI configuration string is not valid',
  TPM_UNAVAILABLE: 'the TPM could not be reached',
  TPM_COMMAND_FAILED: 'a TPM command returned an error response code',
  RESULT_INVALID: 'an attestation result or its evidence bundle does not verify',
  RESULT_RATE_LIMITED: 'attestation results are asked for faster than the TPM is allowed to quote for them',
  AK_CERT_INVALID: 'the AK certificate does not chain to the enrolling CA or does not certify this attestation key',
  ENROLL_INVALID: 'an enrollment challenge, response or state file is malformed or does not match',
  AK_STORE_UNUSABLE: 'the stored attestation key cannot be read or written, or is not an attestd attestation key',
  AK_ROTATION_INVALID: 'an attestation key rotation does not verify: the old key did not certify the new one as an attestd attestation key',
  TPM_RESET: 'the TPM was reset (a reboot) since the previous quote; earlier leases are over',
  TPM_RESTART: 'the TPM was restarted since the previous quote; earlier leases are over',
  TPM_CLOCK_WENT_BACKWARDS: 'the TPM clock moved backwards within one boot',
  TPM_CLOCK_UNSAFE: 'the TPM clock turned unsafe within one boot: it may have been rolled back',

  // Verification of evidence
  QUOTE_MALFORMED: 'a TPMS_ATTEST, TPMT_SIGNATURE or TPMT_PUBLIC structure is malformed',
  QUOTE_BAD_MAGIC: 'the attestation structure does not start with TPM_GENERATED_VALUE',
  QUOTE_WRONG_TYPE: 'the attestation structure is not of the type expected (a quote, a certification)',
  QUOTE_UNSUPPORTED_ALGORITHM: 'the key, signature or hash algorithm is not supported',
  QUOTE_BAD_SIGNATURE: 'the quote signature does not verify with the attestation key',
  QUOTE_KEY_NOT_RESTRICTED: 'the attestation key is not a restricted signing key',
  QUOTE_NONCE_MISMATCH: 'the quote does not carry the expected qualifying data',
  QUOTE_PCR_SELECTION_MISMATCH: 'the quote covers other PCRs than those presented',
  QUOTE_PCR_DIGEST_MISMATCH: 'the PCR values do not hash to the quoted PCR digest',

  // TPM event logs and certificates
  EVENTLOG_MALFORMED: 'a TCG event log is malformed or exceeds its bounds',
  EVENTLOG_REPLAY_MISMATCH: 'a TCG event log does not replay to the quoted PCR values',
  IMA_MALFORMED: 'an IMA measurement list is malformed or exceeds its bounds',
  IMA_TEMPLATE_HASH_MISMATCH: 'an IMA entry does not hash to its template hash',
  IMA_REPLAY_MISMATCH: 'the IMA measurement list does not replay to the quoted PCR 10',
  EK_CERT_INVALID: 'the endorsement key certificate does not chain to a trusted TPM vendor CA',

  // Confidential VMs
  CVM_UNAVAILABLE: 'no confidential-VM report could be obtained',
  CVM_REPORT_MALFORMED: 'a SEV-SNP report or TDX quote is malformed',
  CVM_BINDING_MISMATCH: 'the confidential-VM report does not carry the expected report data',
  SNP_SIGNATURE_INVALID: 'the SEV-SNP report signature does not verify with the VCEK or VLEK',
  SNP_CERT_CHAIN_INVALID: 'the VCEK or VLEK does not chain to an AMD root key',
  SNP_TCB_MISMATCH: 'the SEV-SNP report TCB or chip id differs from the VCEK',
  TDX_SIGNATURE_INVALID: 'a TDX quote or QE report signature does not verify',
  TDX_CERT_CHAIN_INVALID: 'the PCK certificate does not chain to the Intel SGX Root CA',
  TDX_COLLATERAL_INVALID: 'TDX collateral (TCB info, QE identity, CRL) is malformed or not signed by Intel',
  COLLATERAL_STALE: 'verification collateral is older than the policy allows or expired',
  CERT_REVOKED: 'a certificate in the chain is revoked',
  CCEL_MALFORMED: 'the confidential-computing event log is malformed',
  CCEL_REPLAY_MISMATCH: 'the confidential-computing event log does not replay to the RTMRs',

  // GPUs
  NVML_UNAVAILABLE: 'the NVIDIA management library could not be loaded or initialised',
  NVML_CALL_FAILED: 'an NVML call returned an error',
  NVIDIA_SMI_FAILED: 'nvidia-smi could not be run or its output parsed',
  GPU_REPORT_MALFORMED: 'a GPU attestation report is malformed',
  GPU_REPORT_SIGNATURE_INVALID: 'a GPU attestation report signature does not verify',
  GPU_NONCE_MISMATCH: 'a GPU attestation report was made for another nonce',
  GPU_CERT_CHAIN_INVALID: 'the GPU device certificate does not chain to the NVIDIA root',
  GPU_REPORT_NOT_THIS_GPU: 'a GPU attestation report describes another device than the GPU it is filed under',
  GPU_REPORT_DUPLICATE: 'one GPU device key signed the reports of more than one GPU',
  RIM_INVALID: 'a reference integrity manifest is malformed or its signature does not verify',

  // Policy
  POLICY_UNREADABLE: 'the policy file could not be read',
  POLICY_INVALID: 'the policy file does not match the policy schema',

  // Audit log
  AUDIT_WRITE_FAILED: 'an audit record could not be made durable',
  AUDIT_CORRUPT: 'the audit log holds a record that fails its framing or CRC check',
  AUDIT_VERIFY_FAILED: 'an audit log failed offline verification',
  MERKLE_PROOF_INVALID: 'a Merkle inclusion or consistency proof does not verify',
  CHECKPOINT_MALFORMED: 'a checkpoint is not in the tlog-checkpoint format',
  NOTE_MALFORMED: 'a signed note is not in the C2SP signed-note format',
  NOTE_SIGNATURE_INVALID: 'no signature on a signed note verifies with the given key',

  // Workload API: the codes a client sees
  NOT_TRUSTED: 'the host is not in a trusted state',
  ATTESTATION_STALE: 'the latest passing appraisal is older than the policy allows',
  POLICY_PENDING: 'a new policy is in force and no epoch has been appraised under it yet',
  NO_MATCHING_RULE: 'no policy rule matches the calling workload',
  PEER_UNIDENTIFIED: 'the calling process could not be identified by the kernel',
  EXE_TOO_LARGE: 'the calling process runs an executable larger than the daemon will hash',
  IDENTITY_MISMATCH: 'the caller is not the workload the lease was granted to',
  LEASE_NOT_FOUND: 'no live lease has that id',
  LEASE_EXPIRED: 'the lease expired',
  LEASE_REVOKED: 'the lease was revoked',
  HOLDER_EXITED: 'the process holding the lease exited, which ended it',
  LINEAGE_NOT_ALLOWED: 'the rule of the parent lease allows no derivation (lineage.max_depth is 0 or absent)',
  LINEAGE_TOO_DEEP: 'the derived lease would be deeper than the rule\'s lineage.max_depth',
  LINEAGE_NOT_SUBSET: 'a derived lease asks for a scope or GPU its parent lease does not have',
  LINEAGE_NOT_DESCENDANT: 'the process named for a derived lease does not descend from the parent lease\'s holder',
  LINEAGE_CHILD_INVALID: 'the process named for a derived lease could not be identified, or runs as another user or group than the holder',
  ANCESTOR_ENDED: 'a lease this one was derived from ended (revoked, expired, released or its holder exited), which ended it',
  PERMISSION_DENIED: 'the caller may not make this call',
  AUDIT_UNAVAILABLE: 'the decision could not be recorded, so it was not made',
  AUDIT_BUDGET_EXHAUSTED: 'the audit log is at its disk budget, so nothing more is granted or renewed',
  INTENT_MALFORMED: 'an execution intent (in a request, or recorded in the audit log) is out of shape or out of bounds',
  INTENT_ARTIFACT_UNREADABLE: 'an artifact named by path is missing, not a regular file, not readable by the caller, or could not be read by the daemon',
  INTENT_ARTIFACT_TOO_LARGE: 'an artifact named by path is larger than the daemon will hash',
  INTENT_REQUIRED: 'the rule requires an intent field the request does not give',
  INTENT_ARTIFACT_NOT_ALLOWED: 'the digest of an artifact is not among those the rule allows',
  INTENT_IMAGE_NOT_ALLOWED: 'the container image digest is not among those the rule allows',
  INTENT_NOT_MEASURED: 'the rule allows only artifacts the daemon hashed itself, and one was declared by digest',
  AUTHZ_REQUIRED: 'the rule requires signed authorization the request does not give (none, or none from an issuer the rule requires)',
  AUTHZ_INVALID: 'an authorization is not a well-formed JWT, is out of bounds, uses an algorithm the rule does not allow, or its signature does not verify',
  AUTHZ_ISSUER_UNKNOWN: 'an authorization names an issuer the rule does not, or one the policy no longer names',
  AUTHZ_AUDIENCE: 'an authorization is not addressed to this host (its aud is not the audience the rule names)',
  AUTHZ_EXPIRED: 'an authorization is past its exp',
  AUTHZ_NOT_YET_VALID: 'an authorization is before its nbf',
  AUTHZ_MISMATCH: 'an authorization does not authorize this intent, rule or GPUs',
  AUTHZ_REPLAYED: 'an authorization id (jti) was already used for a grant',
  AUTHZ_REVOKED: 'an authorization id (jti) is listed as revoked by the policy',
  TOKEN_INVALID: 'the lease token does not verify',
  FRAME_TOO_LARGE: 'a frame exceeded the maximum frame size',
  MALFORMED_REQUEST: 'a frame could not be decoded as a request',
  UNKNOWN_CALL: 'the request names no known call',
  TOO_MANY_REQUESTS: 'the connection has too many requests or watches outstanding',
  SHUTTING_DOWN: 'the daemon is stopping',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, value);
}

export class AttestdError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ERROR_CODES[code], options);
    this.name = 'AttestdError';
    this.code = code;
  }
}

/** Narrow an unknown thrown value to an AttestdError, wrapping anything else as INTERNAL. */
export function asAttestdError(err: unknown): AttestdError {
  if (err instanceof AttestdError) return err;
  // Errors raised by the native core are constructed from this class, but a realm
  // mismatch (worker threads) could still hand us a plain object with a valid code.
  const code = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
  if (err instanceof Error && isErrorCode(code)) {
    return new AttestdError(code, err.message, { cause: err });
  }
  return new AttestdError('INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
}
