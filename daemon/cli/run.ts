/**
 * attestctl run -- CMD: starts CMD only once a lease is held, keeps the lease renewed, and
 * stops CMD (SIGTERM, then SIGKILL after the grace period) as soon as the lease is revoked,
 * expires, cannot be renewed, or the daemon can no longer be reached: losing sight of the
 * daemon is treated as losing the lease.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { attestd } from '../gen/proto.js';
import { AttestdClient } from '../client/client.js';
import { EXIT } from './exit-codes.js';
import { readIntentFile } from './intent-file.js';
import { readAuthorizationFiles } from './authorization-file.js';

type Intent = attestd.lease.v1.Intent.$Properties;

const Kind = attestd.lease.v1.LeaseEvent.Kind;

export const RUN_HELP = `Usage: attestctl run [--rule NAME] [--gpus G1,G2] [--intent FILE] [--authorization FILE]... [--grace SECONDS] [--json] -- COMMAND [ARGS...]

Acquires a lease, runs COMMAND while it holds it, renews it, and stops COMMAND (SIGTERM, then
SIGKILL after --grace seconds, default 10) when the lease is lost. COMMAND sees ATTESTD_LEASE_ID
and CUDA_VISIBLE_DEVICES set to exactly the GPUs the lease covers (UUIDs; empty when none).
--gpus asks for a subset (UUIDs or indices) of what the rule grants. --intent names an execution
intent file (JSON: artifacts, image_digest, job_id, labels; docs/attestctl.md). --authorization
names a file holding a signed authorization (a compact JWT), for a rule that requires them; repeatable.
Exit code: COMMAND's own (128+signal if it was killed by a signal it did not get from us),
or 88 when COMMAND was stopped because the lease was lost.`;

type Lease = attestd.lease.v1.Lease.$Properties;
type Say = (event: string, fields?: Record<string, unknown>) => void;

/** Progress on stderr: one JSON object a line with --json, else short text. */
function reporter(leaseId: string, json: boolean): Say {
  return (event, fields = {}) => {
    if (json) process.stderr.write(JSON.stringify({ event, lease_id: leaseId, ...fields }) + '\n');
    else process.stderr.write(`attestctl run: ${event}${fields.reason ? `: ${String(fields.reason)}` : ''}\n`);
  };
}

async function acquire(client: AttestdClient, opts: { rule?: string; gpus?: string[] }, intent: Intent | undefined, authorizations: string[]): Promise<Lease> {
  const acquired = await client.call({ acquireLease: { rule: opts.rule ?? '', gpus: opts.gpus ?? [], ...(intent ? { intent } : {}), authorizations } }).catch((err) => {
    client.close();
    throw err;
  });
  return acquired.acquireLease!.lease!;
}

/**
 * Holds one lease for a running child: renews it, watches it, and stops the child (SIGTERM,
 * then SIGKILL after the grace period) once it is revoked, expires, cannot be renewed, or the
 * connection to the daemon is lost.
 */
class LeaseGuard {
  lost = false;
  childExited = false;
  private renewTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;

  constructor(private readonly client: AttestdClient, private readonly child: ChildProcess, private readonly leaseId: string,
    private expiresAt: number, private readonly graceMs: number, private readonly say: Say) {}

  start(): void {
    this.client.onClose((err) => {
      if (err) this.stopChild('connection to attestd lost');
    });
    this.client.call({ watchLease: { leaseId: this.leaseId } }, (r) => {
      const e = r.leaseEvent;
      if (e && (e.kind === Kind.REVOKED || e.kind === Kind.EXPIRED)) this.stopChild(`${Kind[e.kind ?? 0]} ${e.reasonCode ?? ''}`.trim());
    }).catch((err) => this.stopChild(`watch refused: ${(err as Error).message}`));
    this.scheduleRenew();
  }

  /** Clears the timers once the child is gone. */
  stop(): void {
    if (this.renewTimer) clearTimeout(this.renewTimer);
    if (this.killTimer) clearTimeout(this.killTimer);
  }

  private stopChild(reason: string): void {
    // Once the child is gone, whatever happens to the lease no longer concerns it.
    if (this.lost || this.childExited) return;
    this.lost = true;
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.say('lease lost; stopping child', { reason });
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      this.killTimer = setTimeout(() => this.child.kill('SIGKILL'), this.graceMs);
    }
  }

  private scheduleRenew(): void {
    // Renew halfway to expiry: leaves time for one retry before the lease runs out.
    const delay = Math.max(100, (this.expiresAt - Date.now()) / 2);
    this.renewTimer = setTimeout(() => {
      this.client.call({ renewLease: { leaseId: this.leaseId } }).then((r) => {
        this.expiresAt = Number(r.renewLease!.lease!.expiresAtMs);
        if (!this.lost) this.scheduleRenew();
      }, (err) => this.stopChild(`renewal refused: ${(err as Error).message}`));
    }, delay);
  }
}

/** Waits for the child to end, passing SIGINT and SIGTERM on to it meanwhile; returns its exit code. */
async function childExit(child: ChildProcess, guard: LeaseGuard, say: Say): Promise<number> {
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  try {
    return await new Promise<number>((resolve) => {
      child.on('error', (err) => {
        say('child failed to start', { reason: err.message });
        guard.childExited = true;
        resolve(127);
      });
      child.on('exit', (exitCode, signal) => {
        guard.childExited = true;
        resolve(exitCode ?? 128 + (signal ? signalNumber(signal) : 0));
      });
    });
  } finally {
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
  }
}

export async function run(socket: string, command: string[], opts: { rule?: string; gpus?: string[]; graceMs: number; json: boolean; intent?: string | undefined;
  authorizations?: string[] }): Promise<number> {
  const intent = opts.intent ? readIntentFile(opts.intent) : undefined;
  const authorizations = readAuthorizationFiles(opts.authorizations ?? []);
  const client = await AttestdClient.connect(socket);
  const lease = await acquire(client, opts, intent, authorizations);
  const leaseId = lease.leaseId ?? '';
  const expiresAt = Number(lease.expiresAtMs);
  const say = reporter(leaseId, opts.json);

  // Only the leased GPUs are visible to the child (CUDA takes UUIDs here).
  const env = { ...process.env, ATTESTD_LEASE_ID: leaseId, CUDA_VISIBLE_DEVICES: (lease.gpus ?? []).join(',') };
  const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env });
  const guard = new LeaseGuard(client, child, leaseId, expiresAt, opts.graceMs, say);
  guard.start();
  say('lease acquired; child started', { pid: child.pid, expires_at_ms: expiresAt });

  const code = await childExit(child, guard, say);
  guard.stop();
  if (!guard.lost) await client.call({ releaseLease: { leaseId } }).catch(() => undefined);
  client.close();
  return guard.lost ? EXIT.LEASE_LOST : code;
}

function signalNumber(sig: NodeJS.Signals): number {
  const table: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15, SIGSEGV: 11, SIGABRT: 6 };
  return table[sig] ?? 0;
}
