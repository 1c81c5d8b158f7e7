#!/usr/bin/env node
/**
 * attestd-oci-hook: an OCI runtime hook (createRuntime or prestart) that lets a container
 * start only while attestd grants a lease.
 *
 * The daemon identifies callers by SO_PEERCRED, so a lease always belongs to the process that
 * connected: here, the hook, run by the container runtime on the host. The hook therefore asks
 * for a lease for itself, as a gate: under the rule named by the container's `attestd.io/rule`
 * annotation (else --rule, else the first rule matching the hook). The daemon grants it only if
 * the host is TRUSTED with a fresh appraisal and the hook, as the kernel sees it, matches that
 * rule; the decision is in the audit log before the answer. The hook then releases the lease
 * and exits 0, or exits non-zero and the runtime refuses to create the container.
 *
 * What this proves: at the moment the container was created, the host was in a state its
 * policy allows, and the runtime's hook was allowed that rule. What it does not prove: that
 * the container's processes are what its annotation says, or anything after the start. For
 * continuous enforcement run the workload under `attestctl run` inside the container, with the
 * socket mounted; the daemon then identifies the container's own process (and its cgroup).
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { attestd } from '../gen/proto.js';
import { AttestdClient, ConnectionError, RemoteError, resolveSocket } from '../client/client.js';
import { MAX_STATE_BYTES, OciStateError, parseOciState, requestedRule, type OciState } from './oci-state.js';

/** Exit codes: any non-zero makes the runtime refuse the container. Stable, documented. */
const HOOK_EXIT = { ADMITTED: 0, REFUSED: 1, BAD_INPUT: 2, UNREACHABLE: 3, FAILURE: 4 } as const;

const HELP = `Usage: attestd-oci-hook [--socket PATH] [--rule NAME] [--only-annotated] [--timeout SECONDS] [--receipt-dir DIR]

OCI runtime hook (createRuntime or prestart). Reads the container's state JSON on standard input
and exits 0 only if attestd grants a lease under the container's ${'`attestd.io/rule`'} annotation
(else --rule, else the first rule that matches this hook). The lease is released at once: this
is a start gate, recorded in the audit log.

  --socket PATH       attestd socket (else $ATTESTD_SOCKET, else /run/attestd/attestd.sock)
  --rule NAME         rule for containers without the annotation
  --only-annotated    admit containers without the annotation without asking attestd
  --timeout SECONDS   give up after this long (default 10, at most 120)
  --receipt-dir DIR   write DIR/<container id>.json with the signed lease token

Exit codes: 0 admitted, 1 refused by attestd, 2 malformed input or arguments, 3 attestd unreachable
or timed out, 4 unexpected failure.`;

type Outcome = { code: number; message?: string };

async function main(argv: string[]): Promise<Outcome> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        socket: { type: 'string' }, rule: { type: 'string' }, 'only-annotated': { type: 'boolean' },
        timeout: { type: 'string' }, 'receipt-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    return { code: HOOK_EXIT.BAD_INPUT, message: `${(err as Error).message}\n\n${HELP}` };
  }
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return { code: HOOK_EXIT.ADMITTED };
  }
  const timeoutS = values.timeout === undefined ? 10 : Number(values.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0 || timeoutS > 120) {
    return { code: HOOK_EXIT.BAD_INPUT, message: '--timeout must be a number of seconds from 0 to 120' };
  }
  const deadline = Date.now() + timeoutS * 1000;

  let state: OciState;
  let rule: string | undefined;
  try {
    state = parseOciState(await readStdin(MAX_STATE_BYTES, deadline));
    const annotated = Object.prototype.hasOwnProperty.call(state.annotations, 'attestd.io/rule');
    if (!annotated && values['only-annotated']) return { code: HOOK_EXIT.ADMITTED };
    rule = requestedRule(state, values.rule);
  } catch (err) {
    if (err instanceof OciStateError) return { code: HOOK_EXIT.BAD_INPUT, message: `malformed OCI state on standard input: ${err.message}` };
    throw err;
  }
  return await admit(state, rule, resolveSocket(values.socket), deadline, values['receipt-dir']);
}

async function admit(state: OciState, rule: string | undefined, socket: string, deadline: number, receiptDir?: string): Promise<Outcome> {
  const who = `container ${state.id}`;
  let client: AttestdClient | undefined;
  try {
    client = await withDeadline(AttestdClient.connect(socket, Math.max(1, deadline - Date.now())), deadline);
    const res = await withDeadline(client.call({ acquireLease: { rule: rule ?? '' } }), deadline);
    const lease = res.acquireLease?.lease;
    if (!lease?.leaseId) return { code: HOOK_EXIT.UNREACHABLE, message: `${who}: attestd answered without a lease` };
    if (receiptDir !== undefined) await writeReceipt(receiptDir, state, lease);
    // The gate is passed; the lease has done its work once the decision is on record.
    await withDeadline(client.call({ releaseLease: { leaseId: lease.leaseId } }), deadline).catch(() => undefined);
    return { code: HOOK_EXIT.ADMITTED, message: `${who} admitted under rule ${lease.rule ?? '?'} (lease ${lease.leaseId})` };
  } catch (err) {
    if (err instanceof RemoteError) return { code: HOOK_EXIT.REFUSED, message: `${who} refused by attestd: ${err.code}: ${err.message.slice(err.code.length + 2)}` };
    if (err instanceof ConnectionError || err instanceof DeadlineError) {
      return { code: HOOK_EXIT.UNREACHABLE, message: `${who} not admitted: attestd unreachable at ${socket}: ${err.message}` };
    }
    throw err;
  } finally {
    client?.close();
  }
}

/** A JSON record linking the container id to the signed lease token; written atomically. */
async function writeReceipt(dir: string, state: OciState, lease: attestd.lease.v1.ILease): Promise<void> {
  const token = lease.token?.token ?? new Uint8Array();
  const claims = attestd.lease.v1.LeaseToken.decode(token);
  const receipt = {
    container_id: state.id,
    container_pid: state.pid ?? null,
    bundle: state.bundle,
    lease_id: lease.leaseId,
    rule: lease.rule,
    scopes: lease.scopes ?? [],
    epoch: String(claims.epoch),
    issued_at_ms: String(claims.issuedAtMs),
    token_base64: Buffer.from(token).toString('base64'),
    signature_base64: Buffer.from(lease.token?.signature ?? new Uint8Array()).toString('base64'),
  };
  await mkdir(dir, { recursive: true, mode: 0o750 });
  const path = join(dir, `${state.id}.json`);
  await writeFile(`${path}.tmp`, JSON.stringify(receipt, null, 2) + '\n', { mode: 0o640 });
  await rename(`${path}.tmp`, path);
}

class DeadlineError extends Error {
  constructor() {
    super('timed out');
    this.name = 'DeadlineError';
  }
}

function withDeadline<T>(p: Promise<T>, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError()), Math.max(0, deadline - Date.now()));
  });
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}

/** Standard input up to `max` bytes; more than that is refused without buffering it. */
function readStdin(max: number, deadline: number): Promise<Buffer> {
  return withDeadline(new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    process.stdin.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        process.stdin.destroy();
        reject(new OciStateError(`state is larger than ${max} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    process.stdin.once('end', () => resolve(Buffer.concat(chunks)));
    process.stdin.once('error', (err) => reject(new OciStateError(`cannot read standard input: ${err.message}`)));
  }), deadline).catch((err) => {
    throw err instanceof DeadlineError ? new OciStateError('standard input was not closed in time') : err;
  });
}

main(process.argv.slice(2)).then(({ code, message }) => {
  if (message) process.stderr.write(`attestd-oci-hook: ${message}\n`);
  process.exit(code);
}, (err) => {
  process.stderr.write(`attestd-oci-hook: unexpected failure, not admitting: ${String(err)}\n`);
  process.exit(HOOK_EXIT.FAILURE);
});
