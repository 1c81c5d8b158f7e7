/** attestctl lease acquire|renew|release|watch|verify */
import { readIntentFile } from './intent-file.js';
import { readAuthorizationFiles } from './authorization-file.js';
import { writeFile } from 'node:fs/promises';
import { attestd } from '../gen/proto.js';
import { AttestdClient } from '../client/client.js';
import { EXIT } from './exit-codes.js';
import { leaseJson, printJson } from './output.js';

const Kind = attestd.lease.v1.LeaseEvent.Kind;

export const LEASE_HELP = `Usage: attestctl lease <command> [--json]

  acquire [--rule NAME] [--intent FILE] [--hold]   ask for a lease for this process (--intent: an
                                   execution intent, JSON; --authorization FILE, repeatable:
                                   a signed authorization); --hold keeps it, renewing
                                   it and printing events, until interrupted or lost
  renew LEASE_ID                   renew (only the holder process may)
  release LEASE_ID                 release (the holder or a process of its uid)
  watch LEASE_ID                   print events until the lease ends (holder's uid)
  derive PARENT_ID --pid PID [--scopes S1,S2] [--gpus G1,G2]
                                   a narrower lease for process PID, which must descend from
                                   the caller; only the parent's holder process may derive, so
                                   this works where attestctl itself holds PARENT_ID (programs
                                   derive through the client libraries)
  verify TOKEN SIGNATURE           check a token (base64) with the daemon's session key
  result LEASE_ID [--nonce HEX] [--output FILE]
                                   an attestation result for a live lease (holder's uid): an
                                   IETF RATS EAR in its evidence bundle, over a fresh quote of
                                   the relying party's nonce (8 to 64 bytes, hex), for
                                   attestctl verify-result on any machine`;

function printLease(l: attestd.lease.v1.Lease.$Properties | null | undefined, json: boolean): void {
  if (json) printJson(leaseJson(l));
  else process.stdout.write(`lease ${l?.leaseId} rule ${l?.rule} expires ${new Date(Number(l?.expiresAtMs)).toISOString()}\n`);
}

type Ev = attestd.lease.v1.LeaseEvent.$Properties;

export function eventJson(e: Ev): Record<string, unknown> {
  const claims = tokenClaims(e.lease);
  return { event: Kind[e.kind ?? 0], lease_id: e.leaseId, reason_code: e.reasonCode || undefined, reason: e.reason || undefined,
    expires_at_ms: e.lease ? Number(e.lease.expiresAtMs) : undefined,
    epoch: claims ? Number(claims.epoch) : undefined, renewal: claims ? Number(claims.renewal) : undefined };
}

/** The claims of a lease's token (unverified: only for showing the epoch and renewal count). */
function tokenClaims(l: attestd.lease.v1.Lease.$Properties | null | undefined): attestd.lease.v1.LeaseToken | undefined {
  try {
    return l?.token?.token ? attestd.lease.v1.LeaseToken.decode(l.token.token) : undefined;
  } catch {
    return undefined;
  }
}

function printEvent(e: Ev, json: boolean): void {
  if (json) process.stdout.write(JSON.stringify(eventJson(e)) + '\n');
  else process.stdout.write(`${Kind[e.kind ?? 0]} ${e.leaseId}${e.reasonCode ? ` ${e.reasonCode}: ${e.reason}` : ''}\n`);
}

const ENDS = new Set<number>([Kind.REVOKED, Kind.EXPIRED, Kind.RELEASED]);

/** Waits until the watch ends (REVOKED, EXPIRED, RELEASED) or the connection drops. */
function follow(client: AttestdClient, leaseId: string, json: boolean, onEvent?: (e: Ev) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    client.onClose((err) => (err ? reject(err) : resolve(EXIT.OK)));
    client.call({ watchLease: { leaseId } }, (r) => {
      const e = r.leaseEvent;
      if (!e) return;
      printEvent(e, json);
      onEvent?.(e);
      if (ENDS.has(e.kind ?? 0)) resolve(e.kind === Kind.RELEASED ? EXIT.OK : EXIT.LEASE_LOST);
    }).then((first) => printEvent(first.leaseEvent!, json), reject);
  });
}

export async function lease(socket: string, args: string[],
  opts: { json: boolean; rule?: string; hold: boolean; nonce?: string | undefined; output?: string | undefined; intent?: string | undefined;
    derive?: DeriveOptions; authorizations?: string[] }): Promise<number> {
  const [sub, ...rest] = args;
  const client = await AttestdClient.connect(socket);
  try {
    switch (sub) {
      case 'acquire': {
        const intent = opts.intent ? readIntentFile(opts.intent) : undefined;
        const authorizations = readAuthorizationFiles(opts.authorizations ?? []);
        const r = await client.call({ acquireLease: { rule: opts.rule ?? '', ...(intent ? { intent } : {}), authorizations } });
        printLease(r.acquireLease!.lease, opts.json);
        if (!opts.hold) return EXIT.OK;
        const stopRenewing = keepRenewed(client, r.acquireLease!.lease!);
        try {
          return await follow(client, r.acquireLease!.lease!.leaseId ?? '', opts.json);
        } finally {
          stopRenewing();
        }
      }
      case 'renew':
      case 'release': {
        const leaseId = rest[0];
        if (!leaseId) return usage(`lease ${sub} needs a LEASE_ID`);
        if (sub === 'renew') printLease((await client.call({ renewLease: { leaseId } })).renewLease!.lease, opts.json);
        else {
          await client.call({ releaseLease: { leaseId } });
          if (opts.json) printJson({ released: leaseId });
        }
        return EXIT.OK;
      }
      case 'derive':
        return await derive(client, rest[0], opts.derive ?? {}, opts.json);
      case 'watch': {
        const leaseId = rest[0];
        if (!leaseId) return usage('lease watch needs a LEASE_ID');
        return await follow(client, leaseId, opts.json);
      }
      case 'verify': {
        const [token, signature] = rest;
        if (!token || !signature) return usage('lease verify needs TOKEN and SIGNATURE (base64)');
        const v = (await client.call({ verifyLease: { token: { token: Buffer.from(token, 'base64'), signature: Buffer.from(signature, 'base64') } } })).verifyLease!;
        const c = v.claims;
        const out = { signature_valid: v.signatureValid, live: v.live, lease_id: c?.leaseId, epoch: c ? Number(c.epoch) : undefined,
          rule: c?.rule, expires_at_ms: c ? Number(c.expiresAtMs) : undefined, pid: c?.workload?.pid };
        if (opts.json) printJson(out);
        else process.stdout.write(`signature ${v.signatureValid ? 'valid' : 'INVALID'}, lease ${v.live ? 'live' : 'not live'}\n`);
        return v.signatureValid && v.live ? EXIT.OK : EXIT.TOKEN_INVALID;
      }
      case 'result': {
        const leaseId = rest[0];
        if (!leaseId) return usage('lease result needs a LEASE_ID');
        if (opts.nonce !== undefined && !/^(?:[0-9a-fA-F]{2}){8,64}$/.test(opts.nonce)) return usage('--nonce takes 8 to 64 bytes in hex');
        const nonce = opts.nonce === undefined ? undefined : Buffer.from(opts.nonce, 'hex');
        const bundle = (await client.call({ getLeaseResult: { leaseId, nonce } })).getLeaseResult!.bundle ?? '';
        if (opts.output) await writeFile(opts.output, bundle);
        else process.stdout.write(bundle);
        return EXIT.OK;
      }
      default:
        return usage(`unknown lease command: ${sub ?? '(none)'}`);
    }
  } finally {
    client.close();
  }
}

/**
 * Renews the lease whenever the daemon has appraised a newer epoch than the lease's (a renewal
 * under the same epoch could not move its expiry, which the epoch's validity caps), and in any
 * case once less than a quarter of its term is left. Returns the function that stops it.
 */
function keepRenewed(client: AttestdClient, granted: attestd.lease.v1.Lease.$Properties): () => void {
  const leaseId = granted.leaseId ?? '';
  let epoch = Number(tokenClaims(granted)?.epoch ?? 0);
  let issuedAt = Date.now();
  let expiresAt = Number(granted.expiresAtMs ?? 0);
  let busy = false;
  const tick = async () => {
    const status = (await client.call({ getStatus: {} })).getStatus;
    const nearEnd = Date.now() >= expiresAt - (expiresAt - issuedAt) / 4;
    if (Number(status?.epoch ?? 0) <= epoch && !nearEnd) return;
    const renewed = (await client.call({ renewLease: { leaseId } })).renewLease?.lease;
    epoch = Number(tokenClaims(renewed)?.epoch ?? epoch);
    issuedAt = Date.now();
    expiresAt = Number(renewed?.expiresAtMs ?? expiresAt);
  };
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    // A refused renewal is not the end: the watch reports how the lease ends.
    void tick().catch(() => undefined).finally(() => (busy = false));
  }, 250);
  return () => clearInterval(timer);
}

interface DeriveOptions {
  pid?: string | undefined;
  scopes?: string | undefined;
  gpus?: string | undefined;
}

const list = (s: string | undefined): string[] => (s ?? '').split(',').map((x) => x.trim()).filter((x) => x !== '');

/** attestctl lease derive PARENT_ID --pid PID [--scopes ...] [--gpus ...]: prints the derived lease. */
async function derive(client: AttestdClient, parentLeaseId: string | undefined, o: DeriveOptions, json: boolean): Promise<number> {
  if (!parentLeaseId) return usage('lease derive needs a PARENT_ID');
  if (!o.pid || !/^[1-9]\d{0,9}$/.test(o.pid)) return usage('lease derive needs --pid PID');
  const r = await client.call({ deriveLease: { parentLeaseId, childPid: Number(o.pid), scopes: list(o.scopes), gpus: list(o.gpus) } });
  printLease(r.deriveLease!.lease, json);
  return EXIT.OK;
}

function usage(msg: string): number {
  process.stderr.write(`attestctl: ${msg}\n\n${LEASE_HELP}\n`);
  return EXIT.USAGE;
}
