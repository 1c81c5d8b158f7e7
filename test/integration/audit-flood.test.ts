/**
 * One client must not fill the host's disk through the audit log. A hostile process floods the
 * daemon with requests it is refused, beside a well-behaved client: the well-behaved one keeps
 * getting leases, the host stays TRUSTED, and the log grows by a handful of counted records
 * whose counts add up to every refusal. And a log that reaches its disk budget says so (status,
 * metrics, operator log), grants nothing more with AUDIT_BUDGET_EXHAUSTED, and still verifies.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';
import { attestctl, leaseRoundTrip, startDaemon, State, testPolicy, type RunningDaemon } from '../helpers/daemon.js';
import { decode, payloads } from '../helpers/audit-log.js';
import { attestd } from '../../daemon/gen/proto.js';

const Kind = attestd.audit.v1.LeaseDecision.Kind;
const LogState = attestd.lease.v1.AuditLogUsage.State;
const CLIENT = join(import.meta.dirname, '../../dist/daemon/client/client.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A rule for another uid: the hostile process asks for it and never matches. */
const OTHERS_RULE = `  - name: others
    match:
      uids: [4242]
    lease:
      ttl: 30s
      scopes: ["gpu:all"]
`;


/** A separate process (its own pid, so its own identity) that sends `total` refused acquires over `conns` connections. */
function hostileFlood(socket: string, total: number, conns: number) {
  const script = `import { AttestdClient } from ${JSON.stringify(CLIENT)};
const codes = {};
const per = ${Math.floor(total / conns)};
await Promise.all(Array.from({ length: ${conns} }, async () => {
  const c = await AttestdClient.connect(${JSON.stringify(socket)});
  let sent = 0;
  const worker = async () => {
    while (sent < per) {
      sent++;
      try { await c.call({ acquireLease: { rule: 'others' } }); codes.GRANTED = (codes.GRANTED ?? 0) + 1; }
      catch (e) { codes[e.code ?? 'ERROR'] = (codes[e.code ?? 'ERROR'] ?? 0) + 1; }
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  c.close();
}));
console.log(JSON.stringify(codes));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b) => (out += b));
  child.stderr.on('data', (b) => (out += b));
  const done = once(child, 'exit').then(([code]) => {
    if (code !== 0) throw new Error(`hostile client failed (${code}): ${out}`);
    return JSON.parse(out) as Record<string, number>;
  });
  return { pid: child.pid!, done };
}

/** Stops the daemon with SIGTERM, keeping its folder, and verifies its log with attestctl. */
async function stopAndVerify(d: RunningDaemon, akPem: string): Promise<{ records: attestd.audit.v1.AuditRecord[]; summary: Record<string, number> }> {
  d.proc.kill('SIGTERM');
  await d.exited;
  const dir = join(d.stateDir, 'audit');
  const pem = join(d.dir, 'ak.pem');
  await writeFile(pem, akPem);
  const v = await attestctl(['audit', 'verify', dir, '--ak', pem, '--json']);
  expect(v.code, v.stdout + v.stderr).toBe(0);
  const summary = JSON.parse(v.stdout) as Record<string, number>;
  return { records: (await payloads(dir)).map(decode), summary };
}

function scrape(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ socketPath, path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (b) => (body += b));
      res.on('end', () => resolve(body));
    }).on('error', reject).end();
  });
}

let tpm: Swtpm;
beforeAll(async () => {
  tpm = await startSwtpm();
});
afterAll(async () => {
  await tpm?.dispose();
});

describe('a client flooding refused requests', () => {
  it('is counted into few records while a well-behaved client keeps its leases and the host stays TRUSTED', async () => {
    // A flood stretches the time between epochs on a small, busy machine (the daemon serves it on
    // the same event loop as the attestation loop); max_age leaves room for a few slow quotes, as
    // policies/reference.yaml does. Info level, as in production: a debug line per refusal is its own flood.
    const d = await startDaemon({ tcti: tpm.tcti, policy: testPolicy({ interval: '1s', maxAge: '6s', extra: OTHERS_RULE }),
      args: ['--log-level', 'info'] });
    try {
      const akPem = (await d.status()).akPublicPem;
      const before = (await payloads(join(d.stateDir, 'audit'))).length;
      const flood = hostileFlood(d.socket, 20_000, 4);
      let finished = false;
      void flood.done.finally(() => (finished = true)).catch(() => undefined);
      let leases = 0;
      while (!finished) {
        await leaseRoundTrip(d);
        leases++;
        const s = await d.status();
        expect(s.state, s.reasons.join('; ')).toBe(State.TRUSTED);
        await sleep(20);
      }
      const codes = await flood.done;
      expect(codes).toEqual({ NO_MATCHING_RULE: 20_000 });
      expect(leases).toBeGreaterThan(5);
      expect((await d.status()).state).toBe(State.TRUSTED);
      await leaseRoundTrip(d);

      const { records, summary } = await stopAndVerify(d, akPem);
      const refusals = records.map((r) => r.leaseDecision).filter((x) => x && (x.kind === Kind.DENY || x.kind === Kind.RENEW_DENIED));
      const hostile = refusals.filter((x) => x!.workload?.pid === flood.pid);
      // The first refusal on its own, then one count per window (1, 2, 4, 8, 16 s).
      expect(hostile.length).toBeGreaterThanOrEqual(2);
      expect(hostile.length).toBeLessThanOrEqual(20);
      expect(hostile[0]!.repeats).toBeNull();
      expect(hostile.reduce((n, x) => n + (x!.repeats?.count ?? 1), 0)).toBe(20_000);
      expect(records.length - before).toBeLessThan(2000);
      expect(summary.denials).toBe(refusals.reduce((n, x) => n + (x!.repeats?.count ?? 1), 0));
      expect(summary.denials).toBeGreaterThanOrEqual(20_000);
      expect(summary.denialRecords).toBe(refusals.length);
    } finally {
      await d.stop();
    }
  }, 120_000);
});

describe('an audit log at its disk budget', () => {
  it('warns first, then grants nothing with AUDIT_BUDGET_EXHAUSTED while the host stays TRUSTED, and the log still verifies', async () => {
    const metricsDir = await mkdtemp(join(tmpdir(), 'attestd-metrics-'));
    const metrics = join(metricsDir, 'metrics.sock');
    const d = await startDaemon({ tcti: tpm.tcti, policy: testPolicy({ interval: '2s', maxAge: '6s' }),
      args: ['--audit-budget', '64K', '--metrics', `unix:${metrics}`] });
    try {
      const akPem = (await d.status()).akPublicPem;
      expect((await d.status()).auditLog).toMatchObject({ state: LogState.OK, budgetBytes: 65_536 });
      const seen = new Set<number>();
      let refused: unknown;
      for (let i = 0; i < 200 && refused === undefined; i++) {
        seen.add((await d.status()).auditLog!.state!);
        await leaseRoundTrip(d).catch((err: unknown) => (refused = err));
      }
      expect(refused).toMatchObject({ code: 'AUDIT_BUDGET_EXHAUSTED' });
      // The warning came while grants still went through.
      expect([...seen].slice(0, 2)).toEqual([LogState.OK, LogState.LOG_NEARLY_FULL]);
      const s = await d.status();
      expect(s.state).toBe(State.TRUSTED);
      expect(s.auditLog!.state).toBe(LogState.LOG_FULL);
      expect(Number(s.auditLog!.usedBytes)).toBeGreaterThanOrEqual(65_536);
      const c = await d.client();
      await expect(c.call({ acquireLease: {} })).rejects.toMatchObject({ code: 'AUDIT_BUDGET_EXHAUSTED' });
      c.close();

      const ctl = await attestctl(['status'], d.socket);
      expect(ctl.stdout).toMatch(/^audit log: LOG_FULL, \d+ of 65536 bytes$/m);
      const json = JSON.parse((await attestctl(['status', '--json'], d.socket)).stdout) as { audit_log: unknown };
      expect(json.audit_log).toMatchObject({ state: 'LOG_FULL', budget_bytes: 65_536 });
      const text = await scrape(metrics);
      expect(text).toContain('attestd_audit_log_state{state="LOG_FULL"} 1');
      expect(text).toContain('attestd_audit_log_state{state="OK"} 0');
      expect(text).toContain('attestd_audit_log_budget_bytes 65536');
      expect(Number(/^attestd_audit_log_bytes (\d+)$/m.exec(text)![1])).toBeGreaterThanOrEqual(65_536);
      expect(d.output()).toContain('LOG_NEARLY_FULL');
      expect(d.output()).toContain('AUDIT_BUDGET_EXHAUSTED');

      // Epochs go on being recorded past the budget: the host stays TRUSTED.
      const epoch = Number(s.epoch);
      await d.waitFor((x) => Number(x.epoch) > epoch + 1 && x.state === State.TRUSTED, 10_000);
      const { records, summary } = await stopAndVerify(d, akPem);
      expect(summary.grants).toBeGreaterThan(10);
      const last = records.map((r) => r.leaseDecision).filter((x) => x?.reasonCode === 'AUDIT_BUDGET_EXHAUSTED');
      expect(last[0]).toMatchObject({ kind: Kind.DENY });
    } finally {
      await d.stop();
      await rm(metricsDir, { recursive: true, force: true });
    }
  }, 120_000);
});
