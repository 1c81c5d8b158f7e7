/**
 * attestctl run -- CMD: starts CMD only once a lease is held, keeps the lease renewed, and
 * stops CMD (SIGTERM, then SIGKILL after the grace period) as soon as the lease is revoked,
 * expires, cannot be renewed, or the daemon can no longer be reached: losing sight of the
 * daemon is treated as losing the lease.
 */
import { spawn } from 'node:child_process';
import { attestd } from '../gen/proto.js';
import { AttestdClient } from '../client/client.js';
import { EXIT } from './exit-codes.js';

const Kind = attestd.lease.v1.LeaseEvent.Kind;

export const RUN_HELP = `Usage: attestctl run [--rule NAME] [--gpus G1,G2] [--grace SECONDS] [--json] -- COMMAND [ARGS...]

Acquires a lease, runs COMMAND while it holds it, renews it, and stops COMMAND (SIGTERM, then
SIGKILL after --grace seconds, default 10) when the lease is lost. COMMAND sees ATTESTD_LEASE_ID
and CUDA_VISIBLE_DEVICES set to exactly the GPUs the lease covers (UUIDs; empty when none).
--gpus asks for a subset (UUIDs or indices) of what the rule grants.
Exit code: COMMAND's own (128+signal if it was killed by a signal it did not get from us),
or 88 when COMMAND was stopped because the lease was lost.`;

export async function run(socket: string, command: string[], opts: { rule?: string; gpus?: string[]; graceMs: number; json: boolean }): Promise<number> {
  const client = await AttestdClient.connect(socket);
  const acquired = await client.call({ acquireLease: { rule: opts.rule ?? '', gpus: opts.gpus ?? [] } }).catch((err) => {
    client.close();
    throw err;
  });
  const lease = acquired.acquireLease!.lease!;
  const leaseId = lease.leaseId ?? '';
  let expiresAt = Number(lease.expiresAtMs);
  const say = (event: string, fields: Record<string, unknown> = {}) => {
    if (opts.json) process.stderr.write(JSON.stringify({ event, lease_id: leaseId, ...fields }) + '\n');
    else process.stderr.write(`attestctl run: ${event}${fields.reason ? `: ${String(fields.reason)}` : ''}\n`);
  };

  // Only the leased GPUs are visible to the child (CUDA takes UUIDs here).
  const env = { ...process.env, ATTESTD_LEASE_ID: leaseId, CUDA_VISIBLE_DEVICES: (lease.gpus ?? []).join(',') };
  const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env });
  let lost = false;
  let childExited = false;
  let renewTimer: NodeJS.Timeout | undefined;
  let killTimer: NodeJS.Timeout | undefined;

  const stopChild = (reason: string) => {
    // Once the child is gone, whatever happens to the lease no longer concerns it.
    if (lost || childExited) return;
    lost = true;
    if (renewTimer) clearTimeout(renewTimer);
    say('lease lost; stopping child', { reason });
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), opts.graceMs);
    }
  };

  const scheduleRenew = () => {
    // Renew halfway to expiry: leaves time for one retry before the lease runs out.
    const delay = Math.max(100, (expiresAt - Date.now()) / 2);
    renewTimer = setTimeout(() => {
      client.call({ renewLease: { leaseId } }).then((r) => {
        expiresAt = Number(r.renewLease!.lease!.expiresAtMs);
        if (!lost) scheduleRenew();
      }, (err) => stopChild(`renewal refused: ${(err as Error).message}`));
    }, delay);
  };

  client.onClose((err) => {
    if (err) stopChild('connection to attestd lost');
  });
  client.call({ watchLease: { leaseId } }, (r) => {
    const e = r.leaseEvent;
    if (e && (e.kind === Kind.REVOKED || e.kind === Kind.EXPIRED)) stopChild(`${Kind[e.kind ?? 0]} ${e.reasonCode ?? ''}`.trim());
  }).catch((err) => stopChild(`watch refused: ${(err as Error).message}`));
  scheduleRenew();
  say('lease acquired; child started', { pid: child.pid, expires_at_ms: expiresAt });

  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);

  const code = await new Promise<number>((resolve) => {
    child.on('error', (err) => {
      say('child failed to start', { reason: err.message });
      childExited = true;
      resolve(127);
    });
    child.on('exit', (exitCode, signal) => {
      childExited = true;
      resolve(exitCode ?? 128 + (signal ? signalNumber(signal) : 0));
    });
  });
  if (renewTimer) clearTimeout(renewTimer);
  if (killTimer) clearTimeout(killTimer);
  process.off('SIGINT', forward);
  process.off('SIGTERM', forward);
  if (!lost) await client.call({ releaseLease: { leaseId } }).catch(() => undefined);
  client.close();
  return lost ? EXIT.LEASE_LOST : code;
}

function signalNumber(sig: NodeJS.Signals): number {
  const table: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15, SIGSEGV: 11, SIGABRT: 6 };
  return table[sig] ?? 0;
}
