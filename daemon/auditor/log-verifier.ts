/**
 * The offline audit-log verifier. Pure: the caller reads the segments and feeds every record
 * in order; nothing here touches files, the network or a TPM. It trusts one thing, the
 * attestation key's public area, and nothing in the log it has not checked. For each record,
 * in order:
 *  1. framing and CRC (reported by the caller through `damaged`), then the sequence number;
 *  2. the record joins the RFC 6962 tree; each checkpoint's root must equal the tree's root at
 *     the size it names, and its signed note must verify with its session's key;
 *  3. a session key is trusted once a quote signed by the trusted AK carries, as qualifying
 *     data, a binding over that key (an epoch record); every signature made with a session key
 *     (epoch results, checkpoints, lease tokens) counts only once the key is so bound;
 *  4. every epoch result: its signature, its binding recomputed from the session key, epoch
 *     number, GPU digest and the log root at the size it names, its quote and PCR digest; then
 *     the appraisal is re-run on the recorded evidence under the recorded policy and must reach
 *     the recorded verdict;
 *  5. every grant and renewal: the token's signature, its claims against the record, and that it
 *     was issued under a passing epoch of the same session, before that epoch's validity ended,
 *     with an expiry inside it; and its execution intent (lease-intent.ts);
 *  6. every AK rotation: the AK trusted until then certified the new one (verify/ak-rotation.ts),
 *     and the new one is the AK trusted from there on.
 * It stops at the first failure and names the record.
 */
import { createHash, verify, type KeyObject } from 'node:crypto';
import { attestd } from '../gen/proto.js';
import { asAttestdError, AttestdError } from '../base/errors.js';
import { verifyAkCertificate } from '../verify/ak-certificate.js';
import { verifyAkRotation } from '../verify/ak-rotation.js';
import type { Certificate } from '../verify/x509/certificate.js';
import { bindingDigest } from '../verify/binding.js';
import { EPOCH_RESULT_CONTEXT } from '../verify/epoch-result.js';
import { verifyLeaseToken } from '../verify/lease-token.js';
import { verifyQuote } from '../verify/quote.js';
import { parseTpmtPublic, type TpmPublicKey } from '../verify/tpm-public.js';
import { parseCheckpoint } from '../verify/checkpoint.js';
import { noteKeyHash, openNote } from '../verify/signed-note.js';
import { parsePolicy } from '../policy/parse.js';
import { foldReferences } from '../policy/reference-values.js';
import { epochVerdict, type EpochVerdict } from '../appraisal/epoch-verdict.js';
import type { CollateralFile } from '../verify/tdx/collateral.js';
import { rootsInForce, type CvmTrustRoots } from '../verify/cvm/trust-roots.js';
import { decodeEvidence, recordedCollectionFailure, RecordMismatch, type RecordedEvidence } from '../appraisal/epoch-record.js';
import type { GpuTrust } from '../appraisal/gpu-reports.js';
import { RootWindow } from '../verify/merkle/root-window.js';
import { Session } from './session.js';
import { recordedIntentProblem } from './lease-intent.js';
import { maxDepthOf } from '../policy/lineage.js';
import type { LoadedPolicy } from '../policy/types.js';
import { recordedAuthorizationProblem } from './lease-authorization.js';
import { AuditFailure, type Check, type Summary, type Where } from './report.js';

const Kind = attestd.audit.v1.LeaseDecision.Kind;
import V1 = attestd.audit.v1;

export class LogVerifier {
  private readonly tree = new RootWindow();
  private readonly sessions: Session[] = [];
  private firstTimeMs = 0;
  private lastTimeMs = 0;
  private readonly counts = { epochs: 0, passingEpochs: 0, grants: 0, renewals: 0, denials: 0, denialRecords: 0, revocations: 0, checkpoints: 0, recoveries: 0, akRotations: 0 };
  private lastCheckpointSize = 0;
  /** The intent digest (hex, empty for none) each lease was granted with, so renewals keep it. */
  private readonly leaseIntents = new Map<string, string>();
  /** Authorization ids used by grants (lease-authorization.ts), and the checks of the last record still running. */
  private readonly authorizationIds = new Map<string, string>();
  private pendingChecks: { where: Where; check: Promise<string | undefined> }[] = [];
  private where: Where = { seq: 0 };

  private ak: TpmPublicKey | undefined;
  /** With enrolling CAs: where the current AK was first used while no AK certificate vouched for it yet. */
  private uncertified: number | undefined;

  /**
   * `trustedKey`: the attestation key's public key, as `attestctl status --json` shows it (after
   * an AK rotation the log records, the key the rotation certified takes its place); or,
   * undefined, `trust.akCas`: the enrolling CA certificates, and each session's AK is trusted
   * through the AK certificate its start records (docs/enrollment.md).
   * `collateral`: files the auditor supplies for confidential-VM reports whose certificates
   * are not in the log (TDX collateral; SEV-SNP certificates when the host gave no table).
   * `trust`: the auditor's own roots, never the log's: `cvmRoots`, the confidential-VM roots to
   * re-appraise with (default the pinned vendor keys; each session's recorded roots must be
   * among them), and `gpu`, the roots for GPU reports and RIMs (the daemon's `--gpu-roots`;
   * default the pinned NVIDIA roots).
   */
  constructor(private trustedKey: KeyObject | undefined, private readonly collateral: readonly CollateralFile[] = [],
    trust: { cvmRoots?: CvmTrustRoots | undefined; gpu?: GpuTrust | undefined; akCas?: readonly Certificate[] | undefined } = {}) {
    if (trustedKey === undefined && !trust.akCas?.length) throw new AttestdError('INVALID_ARGUMENT', 'an attestation key or enrolling CA certificates to trust');
    this.akCas = trust.akCas ?? [];
    this.cvmRoots = trust.cvmRoots;
    this.gpuTrust = trust.gpu;
    this.acceptedRoots = new Set(rootsInForce(trust.cvmRoots).map((r) => `${r.vendor}:${r.spkiSha256}`));
  }

  private readonly akCas: readonly Certificate[];
  private readonly cvmRoots: CvmTrustRoots | undefined;
  private readonly gpuTrust: GpuTrust | undefined;
  private readonly acceptedRoots: ReadonlySet<string>;

  /**
   * The AK's TPM public area as the log records it, accepted only when its key is the trusted
   * key and it is a restricted signing key (so it only signs what the TPM itself produced).
   */
  private adoptAk(publicArea: Uint8Array): TpmPublicKey {
    if (this.ak?.publicArea.equals(Buffer.from(publicArea))) return this.ak;
    if (this.ak && (this.trustedKey || this.uncertified !== undefined)) {
      this.fail('session-chain', this.trustedKey ? 'the log names another attestation key than the trusted one'
        : 'the log names another attestation key before the previous one was certified');
    }
    let ak: TpmPublicKey;
    try {
      ak = parseTpmtPublic(publicArea);
    } catch (err) {
      this.fail('session-chain', `recorded attestation key does not parse: ${asAttestdError(err).message}`);
    }
    const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });
    if (this.trustedKey && !spki(ak.key).equals(spki(this.trustedKey))) this.fail('session-chain', 'the log names another attestation key than the trusted one');
    if (!ak.restricted || !ak.sign) this.fail('session-chain', 'the recorded attestation key is not a restricted signing key');
    // Anchored on enrolling CAs: the key is taken for now and must be certified by the end.
    if (!this.trustedKey) this.uncertified = this.tree.size;
    this.ak = ak;
    return ak;
  }

  /**
   * With enrolling CAs to trust: the session's AK, if the AK certificate its start records
   * chains to one of them at that time and certifies exactly that AK. The certificate vouches
   * for the key (made in that TPM, never leaving it), so it covers the key's earlier records in
   * the log too. A later session may bring another AK with its own certificate (a rotated key).
   */
  private adoptCertifiedAk(s: attestd.audit.v1.SessionStart, timeMs: number): void {
    try {
      const ak = parseTpmtPublic(s.akPublic);
      verifyAkCertificate(s.akCertificate, this.akCas, [], ak, new Date(timeMs));
      if (!ak.restricted || !ak.sign) this.fail('session-chain', 'the recorded attestation key is not a restricted signing key');
      if (this.ak && !this.ak.publicArea.equals(ak.publicArea) && this.uncertified !== undefined) {
        this.fail('ak-certificate', 'the log names another attestation key before the previous one was certified', { seq: this.uncertified });
      }
      this.ak = ak;
      this.uncertified = undefined;
    } catch (err) {
      if (err instanceof AuditFailure) throw err;
      this.fail('ak-certificate', asAttestdError(err).message);
    }
  }

  /**
   * An AK rotation: the AK it starts from must be the one trusted now, and must have certified
   * the new one; the new one is then trusted in its place (with `--ak`, it replaces the given
   * key; with enrolling CAs, it counts as certified through the old key's certificate, which
   * is why the old key must have been certified, not merely taken for now).
   */
  private akRotation(r: V1.AkRotation): void {
    this.counts.akRotations++;
    const old = this.rotatedFrom(r.oldAkPublic);
    let next: TpmPublicKey;
    try {
      next = verifyAkRotation({ oldAk: old, newAkPublic: r.newAkPublic, certifyInfo: r.certifyInfo, signature: r.signature });
    } catch (err) {
      this.fail('ak-rotation', asAttestdError(err).message);
    }
    if (this.trustedKey) this.trustedKey = next.key;
    this.ak = next;
  }

  /** The AK a rotation starts from, which must be the AK trusted at this point of the log. */
  private rotatedFrom(publicArea: Uint8Array): TpmPublicKey {
    let old: TpmPublicKey;
    try {
      old = parseTpmtPublic(publicArea);
    } catch (err) {
      this.fail('ak-rotation', `the attestation key rotated from does not parse: ${asAttestdError(err).message}`);
    }
    if (this.ak && !this.ak.publicArea.equals(old.publicArea)) this.fail('ak-rotation', 'the rotation starts from another attestation key than the one in use');
    if (this.trustedKey) {
      const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });
      if (!spki(old.key).equals(spki(this.trustedKey))) this.fail('ak-rotation', 'the rotation starts from another attestation key than the trusted one');
    } else if (!this.ak || this.uncertified !== undefined) {
      this.fail('ak-rotation', 'the rotation starts from an attestation key that no AK certificate from the enrolling CA certified');
    }
    return old;
  }

  /** Reports damage the reader found (framing, CRC); always a failure. */
  damaged(where: Omit<Where, 'seq'>, why: string): never {
    this.fail('framing', why, { ...where, seq: this.tree.size });
  }

  /** Checks one record (the payload of one frame) and adds it to the tree. */
  record(payload: Uint8Array, where: Omit<Where, 'seq'> = {}): void {
    this.where = { ...where, seq: this.tree.size };
    let rec: attestd.audit.v1.AuditRecord;
    try {
      rec = attestd.audit.v1.AuditRecord.decode(payload);
    } catch (err) {
      this.fail('record', `does not decode: ${(err as Error).message}`);
    }
    if (rec.seq !== this.tree.size) this.fail('sequence', `has seq ${rec.seq}, expected ${this.tree.size}`);
    if (this.tree.size === 0) this.firstTimeMs = rec.timeMs;
    this.lastTimeMs = rec.timeMs;
    // The tree before this record: what checkpoints and bindings written now refer to.
    const body = rec.body;
    if (body !== 'sessionStart' && body !== 'logRecovery' && body !== 'akRotation' && this.sessions.length === 0) {
      this.fail('session-chain', 'record before any session start');
    }
    switch (body) {
      // Decoded sub-messages carry every field (with defaults); the generated types do not say so.
      case 'sessionStart': this.sessionStart(rec.sessionStart as V1.SessionStart, Number(rec.timeMs)); break;
      case 'policyLoad': this.policyLoad(rec.policyLoad as V1.PolicyLoad); break;
      case 'epoch': this.epoch(rec.epoch as V1.Epoch); break;
      case 'leaseDecision': this.leaseDecision(rec.leaseDecision as V1.LeaseDecision, rec.timeMs); break;
      case 'checkpoint': this.checkpoint(rec.checkpoint as V1.Checkpoint); break;
      case 'logRecovery': this.counts.recoveries++; break;
      case 'akRotation': this.akRotation(rec.akRotation as V1.AkRotation); break;
      default: this.fail('record', 'has no body');
    }
    this.tree.append(payload);
  }

  /**
   * Ends the log: every session that signed anything must have been bound to the AK, and the
   * published checkpoint, if given, must match the log.
   */
  finish(publishedCheckpoint?: string): Summary {
    this.where = { seq: this.tree.size };
    for (const s of this.sessions) {
      if (!s.bound && s.firstSigned !== undefined && s.needsBinding) {
        this.fail('session-chain', `session ${s.index} signed record ${s.firstSigned} but its key was never bound to the attestation key by a quote`, { seq: s.firstSigned });
      }
    }
    if (this.uncertified !== undefined) {
      this.fail('ak-certificate', 'no AK certificate from the enrolling CA certifies the attestation key used here', { seq: this.uncertified });
    }
    if (publishedCheckpoint !== undefined) this.published(publishedCheckpoint);
    return {
      records: this.tree.size, sessions: this.sessions.length, ...this.counts,
      firstTimeMs: this.firstTimeMs, lastTimeMs: this.lastTimeMs, root: this.tree.root().toString('hex'),
      uncheckpointedTail: this.tree.size - this.lastCheckpointSize,
    };
  }

  private get session(): Session {
    return this.sessions[this.sessions.length - 1]!;
  }

  private sessionStart(s: attestd.audit.v1.SessionStart, timeMs: number): void {
    if (s.sessionPublicKey.length !== 32) this.fail('session-chain', 'session key is not 32 bytes');
    if (!this.trustedKey && s.akPublic.length > 0 && s.akCertificate.length > 0) this.adoptCertifiedAk(s, timeMs);
    if (s.akPublic.length > 0) this.adoptAk(s.akPublic);
    this.checkCvmRoots(s);
    this.sessions.push(new Session(this.sessions.length, Buffer.from(s.sessionPublicKey), this.tree.size));
  }

  /**
   * The session's confidential-VM roots must all be roots the auditor trusts: the host may not
   * widen trust by naming a root of its own. A log from before roots were recorded names none
   * and was appraised with the pinned keys.
   */
  private checkCvmRoots(s: attestd.audit.v1.SessionStart): void {
    for (const r of s.cvmTrustRoots ?? []) {
      const digest = Buffer.from(r.spkiSha256 ?? []).toString('hex');
      if (!this.acceptedRoots.has(`${r.vendor}:${digest}`)) {
        this.fail('cvm-roots', `session ${this.sessions.length} trusted a confidential-VM root the auditor was not given (${r.vendor}, SPKI SHA-256 ${digest}); pass the same roots with --cvm-roots`);
      }
    }
  }

  private policyLoad(p: attestd.audit.v1.PolicyLoad): void {
    const text = Buffer.from(p.text);
    if (!p.valid) {
      this.session.policy = undefined;
      return;
    }
    if (!createHash('sha256').update(text).digest().equals(Buffer.from(p.sha256))) this.fail('reappraisal', 'policy text does not hash to its recorded digest');
    try {
      const refs = (p.references ?? []).map((r) => ({ file: r.file ?? '', bytes: Buffer.from(r.text ?? new Uint8Array()) }));
      this.session.policy = foldReferences(parsePolicy(text.toString('utf8'), p.file), refs);
    } catch (err) {
      this.fail('reappraisal', `policy recorded as valid does not load: ${asAttestdError(err).message.split('\n')[0]}`);
    }
  }

  private epoch(e: attestd.audit.v1.Epoch): void {
    const s = this.session;
    this.counts.epochs++;
    if (!verify(null, Buffer.concat([EPOCH_RESULT_CONTEXT, e.result]), s.keyObject, e.signature)) {
      this.fail('epoch-signature', 'epoch result signature does not verify with the session key');
    }
    this.signedBySession();
    let r: attestd.audit.v1.EpochResult;
    try {
      r = attestd.audit.v1.EpochResult.decode(e.result);
    } catch {
      this.fail('record', 'epoch result does not decode');
    }
    if (!s.key.equals(Buffer.from(r.sessionPublicKey))) this.fail('session-chain', 'epoch result names another session key');
    if (r.epoch <= s.lastEpoch) this.fail('record', `epoch ${r.epoch} does not follow epoch ${s.lastEpoch}`);
    s.lastEpoch = r.epoch;
    const root = this.tree.rootAt(r.logSize);
    if (!root) this.fail('record', `epoch binds log size ${r.logSize}, outside what this record can refer to`);
    if (!root.equals(Buffer.from(r.logRoot))) this.fail('checkpoint-root', `epoch ${r.epoch} binds a log root that differs from the log at size ${r.logSize}`);
    // The evidence as the daemon appraised it, read with the daemon's own decoder.
    const evidence = this.decodeEvidence(r, s);
    const binding = bindingDigest({ sessionPublicKey: s.key, epoch: r.epoch, gpuMeasurementSha256: r.gpuMeasurementSha256, logRoot: r.logRoot });
    if (!binding.equals(Buffer.from(r.binding))) this.fail('session-chain', `epoch ${r.epoch} binding does not match its session key, epoch and log root`);
    const { tpm } = evidence;
    const ak = tpm ? this.adoptAk(tpm.akPublic) : undefined;
    // The key is bound by any quote from the trusted AK over this binding, whatever the PCRs say.
    if (tpm && ak && !s.bound) {
      try {
        verifyQuote({ attest: tpm.attest, signature: tpm.signature, pcrs: tpm.banks, ak, expectedNonce: binding });
        s.bound = true;
      } catch {
        // Not bound by this one; the re-appraisal below decides whether that is a failure.
      }
    }
    const policy = s.policy;
    const expectedPolicyDigest = policy?.digest ?? Buffer.alloc(32);
    if (!expectedPolicyDigest.equals(Buffer.from(r.policySha256))) this.fail('reappraisal', `epoch ${r.epoch} names a policy other than the one loaded`);
    const verdict = policy
      ? epochVerdict({ policy: policy.policy, binding, nowMs: r.appraisedAtMs, trustedAkPublic: ak?.publicArea, previousClock: s.carry.clock,
        collectionFailure: recordedCollectionFailure(r), gpuTrust: this.gpuTrust, ...evidence })
      : { pass: false, reasons: [{ code: 'POLICY_INVALID', message: '' }] } as EpochVerdict;
    s.carry.advance(verdict);
    this.compareVerdict(r, verdict, s);
    if (r.pass) {
      this.counts.passingEpochs++;
      if (!policy || r.validUntilMs !== r.appraisedAtMs + policy.policy.maxAgeMs) this.fail('reappraisal', `epoch ${r.epoch} validity is not appraisal time plus max_age`);
    }
    s.epochs.set(r.epoch, { pass: r.pass, validUntilMs: r.validUntilMs, policyDigest: Buffer.from(r.policySha256), underUpdateWindow: r.underUpdateWindow });
    s.current = r.epoch;
  }

  private decodeEvidence(r: attestd.audit.v1.EpochResult, s: Session): RecordedEvidence {
    try {
      return decodeEvidence(r, s.carry, this.collateral, this.cvmRoots);
    } catch (err) {
      if (err instanceof RecordMismatch) this.fail(err.check, err.message);
      throw err;
    }
  }

  /** The re-appraisal must reach the recorded verdict: pass, first reason, reset, update window. */
  private compareVerdict(r: attestd.audit.v1.EpochResult, verdict: EpochVerdict, s: Session): void {
    if ((verdict.chainEnded?.code ?? '') !== (r.chainEnded?.code ?? '')) {
      this.fail('reappraisal', `epoch ${r.epoch} ${r.chainEnded ? 'claims' : 'hides'} a TPM reset or restart that the quotes ${verdict.chainEnded ? 'show' : 'do not show'}`);
    }
    if ((verdict.underUpdateWindow ?? false) !== r.underUpdateWindow) {
      this.fail('reappraisal', `epoch ${r.epoch} is${r.underUpdateWindow ? '' : ' not'} marked as passing under the update window; re-appraisal says otherwise`);
    }
    // After a reset or restart no lease granted before may be renewed.
    if (verdict.chainEnded) for (const id of s.leaseEpoch.keys()) s.deadLeases.add(id);
    // An epoch the daemon could not record-then-apply is failed with AUDIT_UNAVAILABLE; it
    // never appears as passing, so the verdict comparison holds for it too.
    if (verdict.pass !== r.pass) {
      this.fail('reappraisal', `epoch ${r.epoch} recorded as ${r.pass ? 'passing' : 'failing'}, re-appraisal says ${verdict.pass ? 'passing' : `failing (${verdict.reasons.map((x) => x.code).join(', ')})`}`);
    }
    if (!r.pass && verdict.reasons[0] && r.reasons[0]?.code !== verdict.reasons[0].code && r.reasons[0]?.code !== 'AUDIT_UNAVAILABLE') {
      this.fail('reappraisal', `epoch ${r.epoch} recorded reason ${r.reasons[0]?.code}, re-appraisal says ${verdict.reasons[0].code}`);
    }
    // A passing epoch's reasons are those of single GPUs, which decide what leases may name:
    // they must be exactly the ones re-appraisal finds.
    const said = (rs: readonly { code?: string | null; message?: string | null }[]) => rs.map((x) => `${x.code ?? ''}: ${x.message ?? ''}`).join('\n');
    if (r.pass && said(r.reasons) !== said(verdict.reasons)) {
      this.fail('reappraisal', `epoch ${r.epoch} recorded GPU reasons [${r.reasons.map((x) => x.code).join(', ')}], re-appraisal says [${verdict.reasons.map((x) => x.code).join(', ')}]`);
    }
  }

  private leaseDecision(d: attestd.audit.v1.LeaseDecision, timeMs: number): void {
    const s = this.session;
    if (d.kind === Kind.DENY || d.kind === Kind.RENEW_DENIED) this.denial(d, timeMs);
    else if (d.repeats) this.fail('record', 'only a refusal may count repeats');
    if (d.kind === Kind.REVOKE) this.counts.revocations++;
    s.lineage.ended(d);
    if (d.kind !== Kind.GRANT && d.kind !== Kind.RENEW) return;
    if (d.kind === Kind.GRANT) this.counts.grants++;
    else this.counts.renewals++;
    const token = d.token;
    if (!token) this.fail('lease-token', 'grant without a token');
    const claims = verifyLeaseToken(token.token ?? new Uint8Array(), token.signature ?? new Uint8Array(), s.keyObject, s.key);
    if (!claims) this.fail('lease-token', `token of lease ${d.leaseId} does not verify with the session key`);
    this.signedBySession(true);
    if (claims.leaseId !== d.leaseId || claims.epoch !== d.epoch || claims.expiresAtMs !== d.expiresAtMs) {
      this.fail('lease-token', `token of lease ${d.leaseId} disagrees with its record`);
    }
    if (d.kind === Kind.GRANT) s.leaseEpoch.set(d.leaseId, claims.epoch);
    else if (s.deadLeases.has(d.leaseId)) this.fail('lease-validity', `lease ${d.leaseId} renewed after a TPM reset or restart ended its chain`);
    const e = s.epochs.get(claims.epoch);
    if (!e || !e.pass) this.fail('lease-validity', `lease ${d.leaseId} issued under epoch ${claims.epoch}, which did not pass`);
    const current = s.epochs.get(s.current);
    if (!current?.pass) this.fail('lease-validity', `lease ${d.leaseId} issued after epoch ${s.current} failed`);
    if (claims.issuedAtMs > e.validUntilMs) this.fail('lease-validity', `lease ${d.leaseId} issued after epoch ${claims.epoch} went stale`);
    if (claims.expiresAtMs > e.validUntilMs) this.fail('lease-validity', `lease ${d.leaseId} expires after its epoch's validity`);
    if (timeMs < claims.issuedAtMs) this.fail('lease-validity', `lease ${d.leaseId} recorded before it was issued`);
    if (!e.policyDigest.equals(Buffer.from(claims.policySha256))) this.fail('lease-token', `lease ${d.leaseId} names another policy than its epoch`);
    if (e.underUpdateWindow !== d.underUpdateWindow) {
      this.fail('lease-validity', `lease ${d.leaseId} is${d.underUpdateWindow ? '' : ' not'} marked as granted under the update window, unlike its epoch`);
    }
    const intentProblem = recordedIntentProblem(d, claims, s.policy, this.leaseIntents, d.kind === Kind.GRANT);
    if (intentProblem) this.fail('lease-intent', intentProblem);
    const lineageProblem = s.lineage.issued(d, claims, maxDepthUnder(s.policy, claims));
    if (lineageProblem) this.fail('lease-lineage', lineageProblem);
    this.pendingChecks.push({ where: { ...this.where },
      check: recordedAuthorizationProblem(d, claims, s.policy, this.authorizationIds, d.kind === Kind.GRANT) });
  }

  /** Whether checks of the last record are still running: settle() awaits them. */
  get pending(): boolean {
    return this.pendingChecks.length > 0;
  }

  /** Awaits the asynchronous checks of the records so far (signed authorizations); fails on the first failing one. */
  async settle(): Promise<void> {
    const checks = this.pendingChecks;
    this.pendingChecks = [];
    for (const { where, check } of checks) {
      const problem = await check;
      if (problem) this.fail('lease-authorization', problem, where);
    }
  }

  /**
   * A refusal: one, or a count of refusals (docs/audit-log.md, "Denials"), which must count at
   * least one, in a known scope, between times that precede the record.
   */
  private denial(d: attestd.audit.v1.LeaseDecision, timeMs: number): void {
    this.counts.denialRecords++;
    const r = d.repeats as V1.DenialRepeats | null;
    if (!r) {
      this.counts.denials++;
      return;
    }
    if (r.count < 1) this.fail('record', 'a count of refusals counts none');
    if (!(r.scope in V1.DenialRepeats.Scope) || r.scope === V1.DenialRepeats.Scope.SCOPE_UNSPECIFIED) this.fail('record', `a count of refusals has an unknown scope ${r.scope}`);
    if (r.firstMs > r.lastMs || r.lastMs > timeMs) this.fail('record', 'a count of refusals spans times out of order with its record');
    this.counts.denials += r.count;
  }

  private checkpoint(c: attestd.audit.v1.Checkpoint): void {
    const s = this.session;
    this.counts.checkpoints++;
    const cp = this.openCheckpoint(c.note, s);
    if (cp.size > this.tree.size) this.fail('checkpoint-root', `checkpoint claims size ${cp.size} at record ${this.tree.size}`);
    // The daemon checkpoints only when the log grew: an older checkpoint here was moved.
    if (cp.size <= this.lastCheckpointSize) this.fail('checkpoint-root', `checkpoint of size ${cp.size} does not follow the checkpoint of size ${this.lastCheckpointSize}`);
    const root = this.tree.rootAt(cp.size);
    if (!root) this.fail('checkpoint-root', `checkpoint of size ${cp.size} is too far behind its record`);
    if (!root.equals(cp.root)) this.fail('checkpoint-root', `checkpoint root for size ${cp.size} differs from the log`);
    this.signedBySession();
    this.lastCheckpointSize = cp.size;
  }

  private openCheckpoint(note: string, s: Session) {
    try {
      const origin = note.split('\n', 1)[0]!;
      const opened = openNote(note, [{ name: origin, keyHash: noteKeyHash(origin, s.key), key: s.keyObject }]);
      return parseCheckpoint(opened.body);
    } catch (err) {
      this.fail('checkpoint-signature', asAttestdError(err).message);
    }
  }

  /** The published checkpoint file: signed by the last session, and a prefix of this log. */
  private published(note: string): void {
    const s = this.sessions[this.sessions.length - 1];
    if (!s) this.fail('checkpoint-signature', 'published checkpoint but no session in the log');
    const cp = this.openCheckpoint(note, s);
    if (cp.size > this.tree.size) this.fail('checkpoint-root', `published checkpoint covers ${cp.size} records; the log has ${this.tree.size} (records were removed)`);
    const root = this.tree.rootAt(cp.size);
    if (!root || !root.equals(cp.root)) this.fail('checkpoint-root', `published checkpoint root for size ${cp.size} differs from the log`);
  }

  /** Notes that the current session signed this record; it must be bound to the AK by the end. */
  private signedBySession(isToken = false): void {
    const s = this.session;
    s.firstSigned ??= this.tree.size;
    if (isToken) s.needsBinding = true;
  }

  private fail(check: Check, message: string, where: Partial<Where> = {}): never {
    throw new AuditFailure(check, message, { ...this.where, ...where });
  }
}

/** The lineage.max_depth of the token's rule under the policy the session loaded, when the token names that policy. */
function maxDepthUnder(policy: LoadedPolicy | undefined, claims: attestd.lease.v1.LeaseToken): number | undefined {
  if (!policy || !policy.digest.equals(Buffer.from(claims.policySha256))) return undefined;
  const rule = policy.policy.rules.find((r) => r.name === claims.rule);
  return rule ? maxDepthOf(rule) : undefined;
}
