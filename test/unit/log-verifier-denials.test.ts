/**
 * The offline verifier on refusals: a record of one refusal (as every log before counted
 * refusals has them) counts one, a count of refusals counts its count, and a count that cannot
 * be honest (none, an unknown scope, times out of order, on a record that is no refusal) fails
 * the `record` check at that record. Any bytes in its place fail cleanly or count correctly.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LogVerifier } from '../../daemon/auditor/log-verifier.js';
import { verifyLogDir } from '../../daemon/auditor/verify-dir.js';
import { AuditFailure } from '../../daemon/auditor/report.js';
import { attestd } from '../../daemon/gen/proto.js';

const Kind = attestd.audit.v1.LeaseDecision.Kind;
const Scope = attestd.audit.v1.DenialRepeats.Scope;
type Decision = attestd.audit.v1.LeaseDecision.$Properties;

const ak = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
const sessionKey = Buffer.from(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!, 'base64url');
const T = 1_700_000_000_000;

/** A log of a session start and then these lease decisions, each made at T + its index. */
function verify(decisions: Decision[]) {
  const v = new LogVerifier(ak);
  const rec = (seq: number, body: attestd.audit.v1.AuditRecord.$Properties) =>
    attestd.audit.v1.AuditRecord.encode({ seq, timeMs: T + seq, ...body }).finish();
  v.record(rec(0, { sessionStart: { sessionPublicKey: sessionKey } }));
  decisions.forEach((d, i) => v.record(rec(i + 1, { leaseDecision: d })));
  return v.finish();
}

const deny = (repeats?: attestd.audit.v1.DenialRepeats.$Properties, kind = Kind.DENY): Decision =>
  ({ kind, epoch: 3, workload: { pid: 7, uid: 1000 }, reasonCode: 'NO_MATCHING_RULE', reason: 'no policy rule matches this workload', repeats });

function failure(decisions: Decision[]): AuditFailure {
  try {
    verify(decisions);
  } catch (err) {
    if (err instanceof AuditFailure) return err;
    throw err;
  }
  throw new Error('verified');
}

describe('offline verifier: refusals', () => {
  it('counts records of one refusal as before, and counts of refusals by their count', () => {
    expect(verify([deny(), deny(undefined, Kind.RENEW_DENIED)])).toMatchObject({ denials: 2, denialRecords: 2 });
    const counted = deny({ count: 19_999, firstMs: T, lastMs: T + 2, scope: Scope.IDENTICAL });
    expect(verify([deny(), counted, deny({ count: 5, firstMs: T, lastMs: T, scope: Scope.ANY })]))
      .toMatchObject({ denials: 1 + 19_999 + 5, denialRecords: 3, grants: 0 });
  });

  it('verifies a log written by the daemon before counted refusals, each refusal in it counting one', async () => {
    const fixture = join(import.meta.dirname, '../fixtures/audit-log-before-counts');
    const key = createPublicKey(readFileSync(join(fixture, 'ak.pem')));
    const summary = await verifyLogDir(join(fixture, 'audit'), key);
    expect(summary).toMatchObject({ records: 20, sessions: 1, grants: 3, renewals: 3, denials: 5, denialRecords: 5 });
  });

  it('fails a count that cannot be honest, naming the record', () => {
    const bad: [string, Decision][] = [
      ['counts none', deny({ count: 0, firstMs: T, lastMs: T, scope: Scope.IDENTICAL })],
      ['unknown scope', deny({ count: 2, firstMs: T, lastMs: T, scope: 9 as attestd.audit.v1.DenialRepeats.Scope })],
      ['unknown scope', deny({ count: 2, firstMs: T, lastMs: T, scope: Scope.SCOPE_UNSPECIFIED })],
      ['out of order', deny({ count: 2, firstMs: T + 1, lastMs: T, scope: Scope.IDENTICAL })],
      ['out of order', deny({ count: 2, firstMs: T, lastMs: T + 60_000, scope: Scope.IDENTICAL })],
      ['only a refusal', deny({ count: 2, firstMs: T, lastMs: T, scope: Scope.IDENTICAL }, Kind.REVOKE)],
      ['only a refusal', deny({ count: 2, firstMs: T, lastMs: T, scope: Scope.IDENTICAL }, Kind.RELEASE)],
    ];
    for (const [why, d] of bad) {
      const f = failure([deny(), d]);
      expect(f.check, why).toBe('record');
      expect(f.message).toContain(why);
      expect(f.where.seq).toBe(2);
    }
  });

  it('property: any bytes as a count of refusals verify with exactly that count, or fail the record check', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
      // Field 13 (repeats), length-delimited, holding arbitrary bytes, after a valid DENY.
      const head = attestd.audit.v1.LeaseDecision.encode(deny()).finish();
      const len = bytes.length;
      const decisionBytes = Buffer.concat([head, Buffer.from([0x6a, len]), bytes]);
      const payload = attestd.audit.v1.AuditRecord.encode({ seq: 1, timeMs: T + 1 }).finish();
      // leaseDecision is field 6 of AuditRecord, length-delimited.
      const rec = Buffer.concat([payload, Buffer.from([0x32, decisionBytes.length]), decisionBytes]);
      const v = new LogVerifier(ak);
      v.record(attestd.audit.v1.AuditRecord.encode({ seq: 0, timeMs: T, sessionStart: { sessionPublicKey: sessionKey } }).finish());
      let repeats: attestd.audit.v1.DenialRepeats | undefined;
      try {
        repeats = attestd.audit.v1.DenialRepeats.decode(bytes);
      } catch {
        repeats = undefined;
      }
      try {
        v.record(rec);
        const s = v.finish();
        expect(repeats).toBeDefined();
        expect(s.denials).toBe(repeats!.count);
      } catch (err) {
        expect(err).toBeInstanceOf(AuditFailure);
        expect(['record']).toContain((err as AuditFailure).check);
      }
    }), { numRuns: 500 });
  });
});
