import { describe, it, expect, afterEach, vi } from 'vitest';
import { HostStatus } from '../../daemon/api/host-status.js';
import { PolicyHolder } from '../../daemon/policy/holder.js';
import type { EpochState } from '../../daemon/appraisal/epoch-state.js';
import type { LoadedPolicy } from '../../daemon/policy/types.js';
import { attestd } from '../../daemon/gen/proto.js';

const State = attestd.lease.v1.GetStatusResponse.State;
const policy: LoadedPolicy = { file: 'p.yaml', text: '', digest: Buffer.alloc(32, 7),
  policy: { version: 1, intervalMs: 2000, maxAgeMs: 6000, allowSha1: false, pcrs: [], rules: [] } };
const passing = (epoch: number, at: number): EpochState => ({ epoch, pass: true, reasons: [], appraisedAtMs: at, validUntilMs: at + 6000, policyDigest: policy.digest });

function setup() {
  const leases: { epoch: EpochState | undefined; activeCount: number } = { epoch: undefined, activeCount: 0 };
  const holder = new PolicyHolder(policy);
  const status = new HostStatus({ leases, policy: holder, signer: { publicKey: () => Buffer.alloc(32, 1) }, ak: { pem: () => 'PEM' } });
  return { leases, holder, status };
}

afterEach(() => vi.useRealTimers());

describe('host status', () => {
  it('is STARTING before any epoch, TRUSTED under a passing fresh one, UNTRUSTED once it is stale', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const { leases, status } = setup();
    expect(status.report()).toMatchObject({ state: State.STARTING, epoch: 0, reasons: [], akPublicPem: 'PEM', policySha256: policy.digest });
    leases.epoch = passing(3, Date.now());
    leases.activeCount = 2;
    expect(status.report()).toMatchObject({ state: State.TRUSTED, epoch: 3, activeLeases: 2, reasons: [] });
    expect(status.stateName()).toBe('TRUSTED');
    vi.setSystemTime(Date.now() + 6001);
    expect(status.report()).toMatchObject({ state: State.UNTRUSTED, reasons: ['ATTESTATION_STALE: no passing appraisal within max_age'] });
  });

  it('reports a failed epoch with its reasons, and an invalid policy even before any epoch', () => {
    const { leases, holder, status } = setup();
    holder.reject('p.yaml:4:1: rules: required\nmore detail');
    expect(status.report()).toMatchObject({ state: State.UNTRUSTED, reasons: ['POLICY_INVALID: p.yaml:4:1: rules: required'], policySha256: Buffer.alloc(0) });
    leases.epoch = passing(1, Date.now());
    expect(status.stateName()).toBe('UNTRUSTED'); // a passing epoch does not outweigh a policy that failed to load
    holder.load(policy);
    leases.epoch = { ...passing(2, Date.now()), pass: false, reasons: [{ code: 'PCR_MISMATCH', message: 'PCR sha256:16 changed' }] };
    expect(status.report()).toMatchObject({ state: State.UNTRUSTED, reasons: ['PCR_MISMATCH: PCR sha256:16 changed'] });
  });

  it('counts the loop alive while it finishes epochs, passing or not, and remembers the last pass', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const { status } = setup();
    expect(status.loopIsFresh()).toBe(false);
    status.epochDone(passing(1, 999_000));
    expect(status.lastPassMs).toBe(999_000);
    status.epochDone({ ...passing(2, 1_000_000), pass: false });
    expect(status.lastPassMs).toBe(999_000);
    expect(status.loopIsFresh()).toBe(true);
    vi.setSystemTime(1_000_000 + 6001); // max(max_age 6 s, 3 intervals of 2 s)
    expect(status.loopIsFresh()).toBe(false);
  });

  it('reports the audit log against its budget; a full log leaves the host TRUSTED', () => {
    const leases = { epoch: passing(1, Date.now()), activeCount: 0 };
    let usage: { state: 'OK' | 'LOG_NEARLY_FULL' | 'LOG_FULL'; usedBytes: number; budgetBytes: number } =
      { state: 'LOG_NEARLY_FULL', usedBytes: 950, budgetBytes: 1000 };
    const status = new HostStatus({ leases, policy: new PolicyHolder(policy), signer: { publicKey: () => Buffer.alloc(32, 1) },
      ak: { pem: () => 'PEM' }, auditLog: { usage: () => usage } });
    const LogState = attestd.lease.v1.AuditLogUsage.State;
    expect(status.report()).toMatchObject({ state: State.TRUSTED, reasons: [],
      auditLog: { state: LogState.LOG_NEARLY_FULL, usedBytes: 950, budgetBytes: 1000 } });
    usage = { state: 'LOG_FULL', usedBytes: 1000, budgetBytes: 1000 };
    expect(status.report()).toMatchObject({ state: State.TRUSTED, auditLog: { state: LogState.LOG_FULL, usedBytes: 1000 } });
    expect(setup().status.report().auditLog).toBeUndefined();
  });
});
