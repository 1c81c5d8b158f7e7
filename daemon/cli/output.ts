/** Output helpers shared by attestctl subcommands: JSON for machines, short text for people. */
import { attestd } from '../gen/proto.js';
import { RemoteError, ConnectionError } from '../client/client.js';
import { EXIT } from './exit-codes.js';

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v), 2) + '\n');
}

export function leaseJson(l: attestd.lease.v1.Lease.$Properties | null | undefined): Record<string, unknown> | undefined {
  if (!l) return undefined;
  return {
    lease_id: l.leaseId, rule: l.rule, scopes: l.scopes ?? [], expires_at_ms: Number(l.expiresAtMs ?? 0),
    token: l.token ? { token: Buffer.from(l.token.token ?? []).toString('base64'), signature: Buffer.from(l.token.signature ?? []).toString('base64') } : undefined,
  };
}

/** Maps a thrown error to a message on stderr (or JSON on stdout) and an exit code. */
export function reportError(err: unknown, json: boolean): number {
  let code: number = EXIT.FAILURE;
  let payload: Record<string, unknown>;
  if (err instanceof RemoteError) {
    code = EXIT.REFUSED;
    payload = { error: err.code, message: err.message };
  } else if (err instanceof ConnectionError) {
    code = EXIT.UNREACHABLE;
    payload = { error: 'UNREACHABLE', message: err.message };
  } else {
    payload = { error: 'FAILURE', message: err instanceof Error ? err.message : String(err) };
  }
  if (json) printJson(payload);
  else process.stderr.write(`attestctl: ${payload.message as string}\n`);
  return code;
}
