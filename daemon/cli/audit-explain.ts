/** attestctl audit explain LEASE_ID [DIR]: a lease's whole story from the log alone. */
import { framesOf, readSegments } from '../audit/reader.js';
import { LeaseExplainer, type EpochStory, type LeaseStory } from '../auditor/explain.js';
import { EXIT } from './exit-codes.js';
import { printJson } from './output.js';

export const AUDIT_EXPLAIN_HELP = `Usage: attestctl audit explain LEASE_ID [DIR] [--json]

Tells a lease's story from the audit log in DIR (default --dir, $ATTESTD_AUDIT_DIR or
/var/lib/attestd/audit) alone: who held it (pid, uid, executable and its SHA-256, cgroup), the
rule, the epoch it was granted under (when appraised, the quote's TPM clock and PCR digest, each
kind of evidence and its verdict, the policy file and digest), its execution intent (measured
and declared artifacts, image, command line, job, labels), the signed authorizations it was
granted with (issuer, id, validity, what they authorize), every renewal and refused
renewal with its epoch, its lineage (the leases it was derived from, parent first, and every
lease derived from it), and how and why it ended. It reads the log; attestctl audit verify is
what proves it. Exit codes: 0 found, 1 the log could not be read or holds no such lease, 2 usage.`;

const iso = (ms: number) => new Date(ms).toISOString();

function epochText(e: EpochStory | undefined): string {
  if (!e) return '    epoch: not in the log\n';
  const ev = Object.entries(e.evidence).map(([k, v]) => `${k} ${v}`).join(', ');
  return `    epoch ${e.epoch} of session ${e.session}: appraised ${iso(e.appraisedAtMs)}, ${e.pass ? 'passed' : 'FAILED'}, fresh until ${iso(e.validUntilMs)}\n` +
    (e.quote ? `    quote: TPM clock ${e.quote.clockMs} ms (reset ${e.quote.resetCount}, restart ${e.quote.restartCount}), PCR digest ${e.quote.pcrDigest}\n` : '') +
    `    evidence: ${ev || 'none recorded'}\n` +
    `    policy: ${e.policyFile ?? '(file not recorded)'} sha256 ${e.policySha256}\n` +
    e.reasons.map((r) => `    reason: ${r}\n`).join('');
}

function storyText(s: LeaseStory): string {
  const w = s.workload;
  let out = `lease ${s.leaseId} (session ${s.session}), rule ${s.rule}\n`;
  if (w) out += `  holder: pid ${w.pid}, uid ${w.uid}, gid ${w.gid}, ${w.exePath} (sha256 ${w.exeSha256}), cgroup ${w.cgroup}\n`;
  out += `  granted ${iso(s.granted.atMs)} (record ${s.granted.seq}), until ${iso(s.granted.expiresAtMs)}${s.granted.underUpdateWindow ? ', under the update window' : ''}\n`;
  out += epochText(s.granted.epoch);
  if (s.intent) {
    const i = s.intent;
    out += `  intent sha256 ${i.sha256}${i.jobId ? `, job ${i.jobId}` : ''}${i.imageDigest ? `, image ${i.imageDigest}` : ''}\n`;
    for (const a of i.artifacts) out += `    artifact ${a.name}: sha256 ${a.sha256} ${a.measured ? `measured from ${a.path ?? ''}` : 'declared'}\n`;
    if (i.cmdline.length > 0) out += `    command line: ${JSON.stringify(i.cmdline)}\n`;
    for (const [k, v] of Object.entries(i.labels)) out += `    label ${k}=${v}\n`;
  }
  for (const a of s.authorizations ?? []) {
    const window = `${a.notBeforeMs !== undefined ? iso(a.notBeforeMs) : '-'} to ${a.expiresAtMs !== undefined ? iso(a.expiresAtMs) : '-'}`;
    out += `  authorized by ${a.issuer} (id ${a.id}), valid ${window}: ${JSON.stringify(a.authorizes)}\n`;
  }
  for (const r of s.renewals) out += `  renewed ${iso(r.atMs)} (record ${r.seq}), until ${iso(r.expiresAtMs)}\n${epochText(r.epoch)}`;
  for (const r of s.refusedRenewals) out += `  renewal refused ${iso(r.atMs)} (record ${r.seq}): ${r.code} ${r.reason}\n`;
  if (s.lineage) {
    const l = s.lineage;
    out += `  lineage: depth ${l.depth}${l.ancestors.length ? `, derived from ${l.ancestors.join(' <- ')}` : ''}\n`;
    for (const c of l.descendants) out += `    descendant ${c.leaseId} (depth ${c.depth}, from ${c.parentLeaseId})\n`;
  }
  out += s.ended ? `  ${s.ended.how} ${iso(s.ended.atMs)} (record ${s.ended.seq})${s.ended.code ? `: ${s.ended.code} ${s.ended.reason}` : ''}\n`
    : '  not ended in this log\n';
  return out;
}

export async function auditExplain(leaseId: string | undefined, dir: string, json: boolean): Promise<number> {
  if (!leaseId || !/^[0-9a-f]{32}$/.test(leaseId)) {
    process.stderr.write(`attestctl: audit explain needs a LEASE_ID (32 hex characters)\n\n${AUDIT_EXPLAIN_HELP}\n`);
    return EXIT.USAGE;
  }
  const x = new LeaseExplainer(leaseId);
  try {
    for await (const seg of readSegments(dir)) {
      for (const f of framesOf(seg)) if ('payload' in f) x.record(f.payload);
    }
  } catch (err) {
    process.stderr.write(`attestctl: cannot read ${dir}: ${(err as Error).message}\n`);
    return EXIT.FAILURE;
  }
  const story = x.finish();
  if (!story) {
    process.stderr.write(`attestctl: the log in ${dir} never granted lease ${leaseId}\n`);
    return EXIT.FAILURE;
  }
  if (json) printJson(story);
  else process.stdout.write(storyText(story));
  return EXIT.OK;
}
