/**
 * One generation of a lineage, for the lineage integration test: reads the id of the lease
 * derived for it from stdin, watches that lease and reports its events on stdout (one JSON
 * line each). With generations left, it starts the next one and derives a lease for it as the
 * holder; at the last, it tries to derive for a `sleep` of its own and reports the refusal.
 * Usage: node lineage-generation.mjs SOCKET GENERATION LEFT
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

const here = fileURLToPath(import.meta.url);
const { AttestdClient } = await import(resolve(here, '../../../dist/daemon/client/client.js'));
const [socket, genText, leftText] = process.argv.slice(2);
const gen = Number(genText);
const left = Number(leftText);
const say = (o) => process.stdout.write(JSON.stringify({ gen, pid: process.pid, ...o }) + '\n');

const input = createInterface({ input: process.stdin });
const leaseId = await new Promise((r) => input.once('line', r));
const client = await AttestdClient.connect(socket);
await client.call({ watchLease: { leaseId } }, (r) => {
  const e = r.leaseEvent;
  if (e) say({ event: e.kind, leaseId: e.leaseId, reasonCode: e.reasonCode, reason: e.reason });
});
say({ ready: leaseId });

async function derive(childPid) {
  try {
    const r = await client.call({ deriveLease: { parentLeaseId: leaseId, childPid } });
    return { leaseId: r.deriveLease.lease.leaseId };
  } catch (err) {
    return { code: err.code ?? String(err) };
  }
}

if (left > 0) {
  const next = spawn(process.execPath, [here, socket, String(gen + 1), String(left - 1)], { stdio: ['pipe', 'inherit', 'inherit'] });
  const got = await derive(next.pid);
  if (got.leaseId) next.stdin.write(`${got.leaseId}\n`);
  else say({ deriveRefused: got.code });
} else {
  const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
  const got = await derive(sleeper.pid);
  say({ deeper: got.code ?? 'granted' });
  sleeper.kill('SIGKILL');
}
// Stays alive, holding its lease, until the test ends it.
setInterval(() => undefined, 60_000);
