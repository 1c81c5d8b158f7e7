import { describe, it, expect } from 'vitest';
import { generateKeyPairSync, sign as edSign } from 'node:crypto';
import { LeaseManager } from '../../daemon/lease/manager.js';
import { PolicyHolder } from '../../daemon/policy/holder.js';
import type { EpochState } from '../../daemon/appraisal/epoch-state.js';
import type { LoadedPolicy } from '../../daemon/policy/types.js';
import type { WorkloadIdentity } from '../../daemon/base/workload-identity.js';
import type { AuditBody } from '../../daemon/audit/log.js';
import { AttestdError } from '../../daemon/base/errors.js';
import { attestd } from '../../daemon/gen/proto.js';
import { ed25519PublicKey, TOKEN_CONTEXT, verifyLeaseToken } from '../../daemon/verify/lease-token.js';
import { decodeIntent, encodeIntent, intentDigest, type ResolvedIntent } from '../../daemon/verify/intent/codec.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
const signer = { sign: (d: Uint8Array) => edSign(null, d, privateKey), publicKey: () => raw };
const A = Buffer.alloc(32, 0xaa);

const policy: LoadedPolicy = {
  file: 'p.yaml', text: '', digest: Buffer.alloc(32, 7),
  policy: { version: 2, intervalMs: 2000, maxAgeMs: 6000, allowSha1: false, pcrs: [],
    rules: [{ name: 'pinned', match: { uids: [1000] }, ttlMs: 30_000, scopes: [],
      intent: { require: ['artifacts'], measuredOnly: true, artifacts: [A.toString('hex')] } }] },
};
const alice: WorkloadIdentity = { pid: 4242, uid: 1000, gid: 1000, startTime: 77n, exePath: '/usr/bin/python3', exeSha256: Buffer.alloc(32, 1), cgroup: '/' };
const epoch: EpochState = { epoch: 1, pass: true, reasons: [], appraisedAtMs: 1000, validUntilMs: 7000, policyDigest: policy.digest };
const intent: ResolvedIntent = { artifacts: [{ name: 'w', path: '/w', sha256: A, measured: true }], imageDigest: '', cmdline: ['python3', 'x.py'], jobId: 'j', labels: [] };

function manager(records: AuditBody[]): LeaseManager {
  const m = new LeaseManager({ signer, now: () => 1000, policy: new PolicyHolder(policy), audit: async (b) => records.push(b) - 1 });
  m.applyEpoch(epoch);
  return m;
}
const claims = (t: { token: Uint8Array }) => attestd.lease.v1.LeaseToken.decode(t.token);

describe('lease manager: execution intent', () => {
  it('grants with the digest in the token and the encoding in the record; a renewal keeps both', async () => {
    const records: AuditBody[] = [];
    const m = manager(records);
    const lease = await m.acquire(alice, undefined, [], async () => intent);
    const enc = encodeIntent(intent);
    expect(Buffer.from(claims(lease.token).intentSha256)).toEqual(intentDigest(enc));
    expect(decodeIntent(records.at(-1)!.leaseDecision!.intent!)).toEqual(intent);
    const renewed = await m.renew(alice, lease.leaseId);
    expect(Buffer.from(claims(renewed.token).intentSha256)).toEqual(intentDigest(enc));
    expect(Buffer.from(records.at(-1)!.leaseDecision!.intent!)).toEqual(enc);
  });

  it('records a refusal of the resolver or of the rule as a DENY with its code', async () => {
    const records: AuditBody[] = [];
    const m = manager(records);
    await expect(m.acquire(alice, undefined, [], async () => { throw new AttestdError('INTENT_ARTIFACT_UNREADABLE', '/w: ENOENT'); }))
      .rejects.toMatchObject({ code: 'INTENT_ARTIFACT_UNREADABLE' });
    expect(records.at(-1)!.leaseDecision).toMatchObject({ kind: 2, reasonCode: 'INTENT_ARTIFACT_UNREADABLE' });
    await expect(m.acquire(alice)).rejects.toMatchObject({ code: 'INTENT_REQUIRED' });
    const other = { ...intent, artifacts: [{ ...intent.artifacts[0]!, sha256: Buffer.alloc(32, 1) }] };
    await expect(m.acquire(alice, undefined, [], async () => other)).rejects.toMatchObject({ code: 'INTENT_ARTIFACT_NOT_ALLOWED' });
    expect(records.at(-1)!.leaseDecision!.reason).toContain('"w"');
    expect(m.activeCount).toBe(0);
  });

  it('a token naming an intent digest that is not 32 bytes does not verify, though signed', () => {
    const token = attestd.lease.v1.LeaseToken.encode({ version: 1, leaseId: 'a'.repeat(32), sessionPublicKey: raw, intentSha256: Buffer.alloc(16) }).finish();
    const sig = edSign(null, Buffer.concat([TOKEN_CONTEXT, token]), privateKey);
    expect(verifyLeaseToken(token, sig, ed25519PublicKey(raw), raw)).toBeUndefined();
    const good = attestd.lease.v1.LeaseToken.encode({ version: 1, leaseId: 'a'.repeat(32), sessionPublicKey: raw, intentSha256: Buffer.alloc(32) }).finish();
    expect(verifyLeaseToken(good, edSign(null, Buffer.concat([TOKEN_CONTEXT, good]), privateKey), ed25519PublicKey(raw), raw)).toBeDefined();
  });
});
