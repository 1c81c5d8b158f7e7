import { attestd } from '../gen/proto.js';
import { AttestdClient } from '../client/client.js';
import { EXIT } from './exit-codes.js';
import { printJson } from './output.js';

const State = attestd.lease.v1.GetStatusResponse.State;
const LogState = attestd.lease.v1.AuditLogUsage.State;

export const STATUS_HELP = `Usage: attestctl status [--json]

Prints the daemon's state (STARTING, TRUSTED, UNTRUSTED with reasons), the epoch, the audit
log's use of its disk budget (OK, LOG_NEARLY_FULL, LOG_FULL), the session key and the TPM
attestation key's public key (PEM). Exits 0 when TRUSTED, 7 otherwise.`;

export async function status(socket: string, json: boolean): Promise<number> {
  const client = await AttestdClient.connect(socket);
  try {
    const s = (await client.call({ getStatus: {} })).getStatus!;
    const state = State[s.state ?? 0] ?? 'STATE_UNSPECIFIED';
    const reasons = s.reasons ?? [];
    const log = s.auditLog ? { state: LogState[s.auditLog.state ?? 0] ?? 'STATE_UNSPECIFIED',
      used_bytes: Number(s.auditLog.usedBytes ?? 0), budget_bytes: Number(s.auditLog.budgetBytes ?? 0) } : undefined;
    if (json) {
      printJson({
        state, epoch: Number(s.epoch), reasons, appraised_at_ms: Number(s.appraisedAtMs), valid_until_ms: Number(s.validUntilMs),
        session_public_key: Buffer.from(s.sessionPublicKey ?? []).toString('hex'), ak_public_pem: s.akPublicPem,
        policy_sha256: Buffer.from(s.policySha256 ?? []).toString('hex'), active_leases: s.activeLeases, audit_log: log,
      });
    } else {
      process.stdout.write(`state: ${state}\nepoch: ${s.epoch}\nactive leases: ${s.activeLeases}\n`);
      for (const r of reasons) process.stdout.write(`reason: ${r}\n`);
      if (log) process.stdout.write(`audit log: ${log.state}, ${log.used_bytes} of ${log.budget_bytes} bytes\n`);
      if (s.akPublicPem) process.stdout.write(`attestation key:\n${s.akPublicPem}`);
    }
    return s.state === State.TRUSTED ? EXIT.OK : EXIT.NOT_TRUSTED;
  } finally {
    client.close();
  }
}
