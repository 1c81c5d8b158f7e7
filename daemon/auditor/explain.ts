/**
 * A lease's whole story, told from the audit log alone (`attestctl audit explain`): the grant
 * and the epoch it stood on (when it was appraised, the quote's TPM clock and PCR digest, each
 * kind of evidence and its verdict, the policy), every renewal and the epoch under it, and how
 * and why the lease ended. Pure: fed record by record, like the verifier. It reads; `attestctl
 * audit verify` is what proves the log.
 */
import { attestd } from '../gen/proto.js';
import { decodeJwt } from 'jose';
import { decodeIntent, intentDigest } from '../verify/intent/codec.js';
import { parseQuoteAttest } from '../verify/tpm-attest.js';
import { LineageIndex, type LineageStory } from './explain-lineage.js';

import V1 = attestd.audit.v1;
const Kind = V1.LeaseDecision.Kind;

export interface EpochStory {
  session: number;
  epoch: number;
  appraisedAtMs: number;
  validUntilMs: number;
  pass: boolean;
  reasons: string[];
  policySha256: string;
  policyFile?: string | undefined;
  quote?: { clockMs: string; resetCount: number; restartCount: number; pcrDigest: string } | undefined;
  /** Each kind of evidence the epoch recorded, and whether it passed. */
  evidence: Record<string, 'passed' | 'failed'>;
}

export interface LeaseStory {
  leaseId: string;
  session: number;
  rule: string;
  workload?: { pid: number; uid: number; gid: number; exePath: string; exeSha256: string; cgroup: string } | undefined;
  granted: { atMs: number; seq: number; expiresAtMs: number; underUpdateWindow: boolean; epoch: EpochStory | undefined };
  /** The execution intent the grant recorded, with its digest; absent for a lease granted without one. */
  intent?: IntentStory | undefined;
  /** The signed authorizations the grant recorded, as their claims read (audit verify checks them). */
  authorizations?: AuthorizationStory[] | undefined;
  renewals: { atMs: number; seq: number; expiresAtMs: number; epoch: EpochStory | undefined }[];
  refusedRenewals: { atMs: number; seq: number; code: string; reason: string }[];
  ended?: { atMs: number; seq: number; how: 'released' | 'revoked' | 'expired'; code: string; reason: string } | undefined;
  /** The leases it was derived from and those derived from it; absent when there are none. */
  lineage?: LineageStory | undefined;
}

export interface IntentStory {
  sha256: string;
  artifacts: { name: string; path?: string | undefined; sha256: string; measured: boolean }[];
  imageDigest: string;
  cmdline: string[];
  jobId: string;
  labels: Record<string, string>;
}

/** The recorded intent as the story tells it; undefined when there is none or it does not decode (audit verify says why). */
function intentStory(encoding: Uint8Array | null | undefined): IntentStory | undefined {
  if (!encoding || encoding.length === 0) return undefined;
  try {
    const i = decodeIntent(encoding);
    return {
      sha256: intentDigest(encoding).toString('hex'),
      artifacts: i.artifacts.map((a) => ({ name: a.name, path: a.path, sha256: a.sha256.toString('hex'), measured: a.measured })),
      imageDigest: i.imageDigest, cmdline: i.cmdline, jobId: i.jobId, labels: Object.fromEntries(i.labels),
    };
  } catch {
    return undefined;
  }
}

export interface AuthorizationStory {
  issuer: string;
  id: string;
  audience: unknown;
  notBeforeMs?: number | undefined;
  expiresAtMs?: number | undefined;
  authorizes: unknown;
}

/** Each recorded authorization's claims; one that does not decode is shown as such. */
function authorizationStories(jwts: readonly string[] | null | undefined): AuthorizationStory[] | undefined {
  if (!jwts || jwts.length === 0) return undefined;
  return jwts.map((jwt) => {
    try {
      const c = decodeJwt(jwt);
      return { issuer: c.iss ?? '', id: c.jti ?? '', audience: c.aud, notBeforeMs: c.nbf === undefined ? undefined : c.nbf * 1000,
        expiresAtMs: c.exp === undefined ? undefined : c.exp * 1000, authorizes: c['attestd.authorizes'] };
    } catch {
      return { issuer: '', id: '', audience: undefined, authorizes: 'does not decode' };
    }
  });
}

/** The reason-code prefixes of each kind of evidence. */
const EVIDENCE_CODES: readonly [string, readonly string[]][] = [
  ['tpm', ['TPM_', 'QUOTE_', 'PCR_', 'AK_']],
  ['boot', ['EVENTLOG_', 'BOOT_']],
  ['ima', ['IMA_']],
  ['cvm', ['CVM_', 'SNP_', 'TDX_', 'CCEL_', 'COLLATERAL_', 'CERT_']],
  ['gpu', ['GPU_', 'NVML_', 'NVIDIA_', 'RIM_']],
];

export class LeaseExplainer {
  private session = -1;
  private readonly policies = new Map<string, string>();
  private readonly epochs = new Map<string, EpochStory>();
  private story: LeaseStory | undefined;
  private seq = 0;
  /** Lineage per session: a restart ends every lease, so a lineage never spans two. */
  private readonly lineages = new Map<number, LineageIndex>();

  constructor(private readonly leaseId: string) {}

  record(payload: Uint8Array): void {
    const seq = this.seq++;
    const rec = V1.AuditRecord.decode(payload);
    const at = Number(rec.timeMs);
    if (rec.sessionStart) this.session++;
    else if (rec.policyLoad?.valid) this.policies.set(Buffer.from(rec.policyLoad.sha256 ?? []).toString('hex'), rec.policyLoad.file ?? '');
    else if (rec.epoch?.result) this.epoch(V1.EpochResult.decode(rec.epoch.result));
    else if (rec.leaseDecision) this.decision(rec.leaseDecision as V1.LeaseDecision, at, seq);
  }

  /** The story, or undefined when the log never granted that lease. */
  finish(): LeaseStory | undefined {
    if (this.story) this.story.lineage = this.lineages.get(this.story.session)?.story(this.leaseId);
    return this.story;
  }

  private epoch(r: V1.EpochResult): void {
    const reasons = r.reasons.map((x) => x.code ?? '');
    const evidence: Record<string, 'passed' | 'failed'> = {};
    const present: Record<string, boolean> = { tpm: !!r.tpm, boot: !!r.boot, ima: !!r.ima, cvm: !!r.cvm, gpu: !!r.gpu };
    for (const [kind, prefixes] of EVIDENCE_CODES) {
      const failed = reasons.some((c) => prefixes.some((p) => c.startsWith(p)));
      if (present[kind] || failed) evidence[kind] = failed ? 'failed' : 'passed';
    }
    let quote: EpochStory['quote'];
    if (r.tpm?.attest?.length) {
      try {
        const a = parseQuoteAttest(r.tpm.attest);
        quote = { clockMs: a.clockInfo.clock.toString(), resetCount: a.clockInfo.resetCount, restartCount: a.clockInfo.restartCount,
          pcrDigest: a.pcrDigest.toString('hex') };
      } catch {
        quote = undefined;
      }
    }
    const policySha256 = Buffer.from(r.policySha256).toString('hex');
    this.epochs.set(`${this.session}/${r.epoch}`, {
      session: this.session, epoch: Number(r.epoch), appraisedAtMs: Number(r.appraisedAtMs), validUntilMs: Number(r.validUntilMs), pass: r.pass,
      reasons: r.reasons.map((x) => `${x.code}: ${x.message}`), policySha256, policyFile: this.policies.get(policySha256), quote, evidence,
    });
  }

  private decision(d: V1.LeaseDecision, at: number, seq: number): void {
    if (d.kind === Kind.GRANT && d.parentLeaseId) {
      let index = this.lineages.get(this.session);
      if (!index) this.lineages.set(this.session, (index = new LineageIndex()));
      index.granted(d.leaseId, d.parentLeaseId, d.depth);
    }
    const mine = d.leaseId === this.leaseId || d.leaseIds.includes(this.leaseId);
    if (!mine) return;
    const epoch = this.epochs.get(`${this.session}/${Number(d.epoch)}`);
    const w = d.workload;
    switch (d.kind) {
      case Kind.GRANT:
        this.story = {
          leaseId: this.leaseId, session: this.session, rule: d.rule,
          workload: w ? { pid: w.pid ?? 0, uid: w.uid ?? 0, gid: w.gid ?? 0, exePath: w.exePath ?? '', exeSha256: Buffer.from(w.exeSha256 ?? []).toString('hex'),
            cgroup: w.cgroup ?? '' } : undefined,
          granted: { atMs: at, seq, expiresAtMs: Number(d.expiresAtMs), underUpdateWindow: d.underUpdateWindow, epoch },
          intent: intentStory(d.intent),
          authorizations: authorizationStories(d.authorizations),
          renewals: [], refusedRenewals: [],
        };
        break;
      case Kind.RENEW:
        this.story?.renewals.push({ atMs: at, seq, expiresAtMs: Number(d.expiresAtMs), epoch });
        break;
      case Kind.RENEW_DENIED:
        this.story?.refusedRenewals.push({ atMs: at, seq, code: d.reasonCode, reason: d.reason });
        break;
      case Kind.RELEASE:
      case Kind.REVOKE:
      case Kind.EXPIRE:
        if (this.story && !this.story.ended) {
          const how = d.kind === Kind.RELEASE ? 'released' : d.kind === Kind.REVOKE ? 'revoked' : 'expired';
          this.story.ended = { atMs: at, seq, how, code: d.reasonCode, reason: d.reason };
        }
        break;
      default:
        break;
    }
  }
}
