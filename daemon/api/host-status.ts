/**
 * The host's state as the daemon reports it: GetStatus, the metrics' state gauges, the
 * systemd status line and watchdog. Derived from the epoch the lease manager acts on, the
 * policy in force, the pinned AK, and when the attestation loop last finished an epoch,
 * which the loop's epoch observer tells it (epochDone).
 */
import { attestd } from '../gen/proto.js';
import type { Signer } from '../base/signer.js';
import type { EpochState } from '../appraisal/epoch-state.js';
import type { PolicyInForce } from '../policy/holder.js';
import type { LeaseManager } from '../lease/manager.js';

const State = attestd.lease.v1.GetStatusResponse.State;
const LogState = attestd.lease.v1.AuditLogUsage.State;
export type StateName = 'STARTING' | 'TRUSTED' | 'UNTRUSTED';

export interface HostStatusDeps {
  leases: Pick<LeaseManager, 'epoch' | 'activeCount'>;
  policy: PolicyInForce;
  signer: Pick<Signer, 'publicKey'>;
  /** The pinned AK as PEM, '' while none is pinned. */
  ak: { pem(): string };
  /** The audit log against its disk budget (audit/budget.ts). */
  auditLog?: { usage(): { state: keyof typeof LogState; usedBytes: number; budgetBytes: number } };
}

export class HostStatus {
  private lastEpochDoneMs = 0;
  private lastPass = 0;

  constructor(private readonly deps: HostStatusDeps) {}

  /** The loop finished an epoch (passing or not) and it is in force. */
  epochDone(e: EpochState): void {
    this.lastEpochDoneMs = Date.now();
    if (e.pass) this.lastPass = e.appraisedAtMs;
  }

  /** Unix ms of the latest passing appraisal, 0 if none. */
  get lastPassMs(): number {
    return this.lastPass;
  }

  /**
   * Whether the attestation loop is alive: it completed an epoch (passing or not) recently.
   * A host that is UNTRUSTED because of drift keeps its watchdog; a stalled loop does not.
   */
  loopIsFresh(): boolean {
    const p = this.deps.policy.current?.policy;
    const limit = Math.max(p?.maxAgeMs ?? 10_000, 3 * (p?.intervalMs ?? 2000));
    return this.lastEpochDoneMs > 0 && Date.now() - this.lastEpochDoneMs <= limit;
  }

  stateName(): StateName {
    return (['STARTING', 'STARTING', 'TRUSTED', 'UNTRUSTED'] as const)[this.report().state as number] ?? 'STARTING';
  }

  /** The GetStatus answer: TRUSTED only under a passing, fresh epoch and a valid policy. */
  report(): attestd.lease.v1.GetStatusResponse.$Properties {
    const { leases, policy } = this.deps;
    const e = leases.epoch;
    const problem = policy.problem;
    const reasons: string[] = [];
    let state = State.STARTING;
    if (problem) reasons.push(`POLICY_INVALID: ${problem.split('\n')[0]}`);
    if (e) {
      const fresh = e.pass && Date.now() <= e.validUntilMs;
      state = fresh && !problem ? State.TRUSTED : State.UNTRUSTED;
      if (!e.pass) for (const r of e.reasons) reasons.push(`${r.code}: ${r.message}`);
      else if (!fresh) reasons.push('ATTESTATION_STALE: no passing appraisal within max_age');
    } else if (problem) {
      state = State.UNTRUSTED;
    }
    return {
      state, epoch: e?.epoch ?? 0, reasons, appraisedAtMs: e?.appraisedAtMs ?? 0, validUntilMs: e?.validUntilMs ?? 0,
      sessionPublicKey: this.deps.signer.publicKey(), akPublicPem: this.deps.ak.pem(), policySha256: policy.current?.digest ?? Buffer.alloc(0),
      activeLeases: leases.activeCount, auditLog: this.auditLog(),
    };
  }

  /** How full the audit log is; a full log leaves the host TRUSTED but grants nothing (AUDIT_BUDGET_EXHAUSTED). */
  private auditLog(): attestd.lease.v1.AuditLogUsage.$Properties | undefined {
    const u = this.deps.auditLog?.usage();
    return u && { state: LogState[u.state], usedBytes: u.usedBytes, budgetBytes: u.budgetBytes };
  }
}
