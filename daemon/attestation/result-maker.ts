/**
 * Makes attestation results (verify/ear/): for a live lease and a relying party's nonce, a
 * fresh quote by the AK over SHA-256("attestd/result/v1" || session key || nonce), and an EAR
 * signed by the session key, packed in the evidence bundle with the AK certificate and the EK
 * certificates. One TPM quote per result, at most `perSecond` a second (RESULT_RATE_LIMITED
 * past that): a result request can never starve the attestation loop of the TPM.
 *
 * The EAR is signed by the native session key, whose private half never leaves native memory,
 * so the compact JWS is assembled here (header and payload as JSON, base64url, the Ed25519
 * signature over "header.payload"); jose checks it on the other side (verify-result.ts).
 */
import { randomBytes } from 'node:crypto';
import { AttestdError } from '../base/errors.js';
import type { Signer } from '../base/signer.js';
import type { WorkloadIdentity } from '../base/workload-identity.js';
import type { EpochState } from '../appraisal/epoch-state.js';
import type { TpmSource } from '../evidence/tpm/source.js';
import { requiredSelections } from '../policy/appraise.js';
import type { Policy } from '../policy/types.js';
import { encodeBundle, resultBinding } from '../verify/ear/bundle.js';
import { earClaims, signingInput, type Submod } from '../verify/ear/claims.js';

export interface LeaseForResult {
  lease: { leaseId: string; rule: string; scopes: string[]; gpus: string[]; expiresAtMs: number };
  holder: WorkloadIdentity;
  epoch: number;
}

export interface ResultMakerDeps {
  tpm: Pick<TpmSource, 'quote' | 'selections'>;
  signer: Signer;
  policy: () => Policy | undefined;
  epoch: () => EpochState | undefined;
  akCertificate: () => Buffer | undefined;
  ekCertificates: () => Buffer[];
  build: string;
  perSecond?: number;
  now?: () => number;
}

/** The parts of the host the epoch appraised, each with the AR4SI claims it speaks to. */
function submods(policy: Policy, epoch: EpochState, gpus: string[]): Record<string, Submod> {
  const failing = (prefix: string) => epoch.reasons.some((r) => r.code.startsWith(prefix) && !r.gpu);
  const status = (bad: boolean) => (epoch.pass && !bad ? 'affirming' : 'contraindicated') as Submod['status'];
  const out: Record<string, Submod> = {
    tpm: { status: status(false), claims: ['instance-identity', 'hardware', 'configuration', ...(policy.boot ? ['executables' as const] : [])] },
  };
  if (policy.ima) out.ima = { status: status(failing('IMA_')), claims: ['executables', 'file-system'] };
  if (policy.cvm) out.cvm = { status: status(failing('CVM_') || failing('SNP_') || failing('TDX_')), claims: ['hardware', 'runtime-opaque', 'executables'] };
  for (const g of gpus) out[`gpu:${g}`] = { status: status(epoch.badGpus?.includes(g) ?? false), claims: ['hardware', 'executables', 'configuration'] };
  return out;
}

export class ResultMaker {
  private tokens: number;
  private refilledAtMs: number;

  constructor(private readonly deps: ResultMakerDeps) {
    this.tokens = deps.perSecond ?? 10;
    this.refilledAtMs = this.now();
  }

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /** A token-bucket of `perSecond` quotes a second, as many at once. */
  private take(): void {
    const rate = this.deps.perSecond ?? 10;
    const now = this.now();
    this.tokens = Math.min(rate, this.tokens + ((now - this.refilledAtMs) / 1000) * rate);
    this.refilledAtMs = now;
    if (this.tokens < 1) throw new AttestdError('RESULT_RATE_LIMITED', 'attestation results are asked for too fast');
    this.tokens -= 1;
  }

  async make(l: LeaseForResult, nonce: Buffer | undefined): Promise<string> {
    const policy = this.deps.policy();
    const epoch = this.deps.epoch();
    if (!policy || !epoch?.pass) throw new AttestdError('NOT_TRUSTED', 'the host is not in a trusted state');
    this.take();
    const n = nonce ?? randomBytes(32);
    const sessionPublicKey = this.deps.signer.publicKey();
    const q = await this.deps.tpm.quote(resultBinding(sessionPublicKey, n), await this.deps.tpm.selections(requiredSelections(policy), policy.allowSha1));
    const w = l.holder;
    const claims = earClaims({
      iatSeconds: Math.floor(this.now() / 1000), nonce: n, build: this.deps.build, submods: submods(policy, epoch, l.lease.gpus),
      lease: {
        lease_id: l.lease.leaseId, rule: l.lease.rule, scopes: l.lease.scopes, gpus: l.lease.gpus, expires_at_ms: l.lease.expiresAtMs,
        epoch: l.epoch, policy_sha256: epoch.policyDigest.toString('hex'),
        workload: { pid: w.pid, uid: w.uid, gid: w.gid, exe_sha256: Buffer.from(w.exeSha256).toString('hex'), exe_path: w.exePath, cgroup: w.cgroup },
      },
    });
    const input = signingInput(claims);
    const ear = `${input}.${this.deps.signer.sign(Buffer.from(input)).toString('base64url')}`;
    return encodeBundle({
      ear, sessionPublicKey, nonce: n,
      quote: { attest: q.attest, signature: q.signature, akPublic: q.ak.publicArea, banks: q.banks },
      akCertificate: this.deps.akCertificate(), ekCertificates: this.deps.ekCertificates(),
    });
  }
}
