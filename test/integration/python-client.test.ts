/**
 * The Python client (clients/python/attestd_client.py) against attestd's own protobuf code and
 * against a live daemon: golden bytes are written here with daemon/gen/proto.js, then the
 * Python unittest suite runs with the golden file, the daemon's socket and the software TPM's
 * TCTI (to drive a PCR drift) in its environment.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attestd } from '../../daemon/gen/proto.js';
import { sharedDaemon, testPolicy } from '../helpers/daemon.js';

const v1 = attestd.lease.v1;
const PY_DIR = resolve(import.meta.dirname, '../../clients/python');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
/** 2^64 - 1 in the {low, high} form protobufjs writes 64-bit fields from. */
const U64_MAX = { low: 0xffffffff, high: 0xffffffff, unsigned: true };
const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

function goldenRequests() {
  const intent = { artifacts: [{ path: '/models/w.safetensors', name: 'weights' }, { sha256: 'ab'.repeat(32) }],
    image_digest: `sha256:${'cd'.repeat(32)}`, job_id: 'job-7', labels: { team: 'ml', 'ключ': 'значение' } };
  const intentProto = { artifacts: [{ name: 'weights', path: '/models/w.safetensors' }, { sha256: Buffer.from('ab'.repeat(32), 'hex') }],
    imageDigest: intent.image_digest, jobId: intent.job_id, labels: intent.labels };
  const cases: { id: number; call: string; arg: string | null; nonce?: string; intent?: object; derive?: object; authorizations?: string[];
    req: attestd.lease.v1.IRequest }[] = [
    { id: 1, call: 'get_status', arg: null, req: { getStatus: {} } },
    { id: 2, call: 'acquire_lease', arg: null, req: { acquireLease: {} } },
    { id: 300, call: 'acquire_lease', arg: 'trainer', req: { acquireLease: { rule: 'trainer' } } },
    { id: 2 ** 40 + 5, call: 'renew_lease', arg: 'ab'.repeat(16), req: { renewLease: { leaseId: 'ab'.repeat(16) } } },
    { id: 2 ** 52, call: 'release_lease', arg: 'cd'.repeat(16), req: { releaseLease: { leaseId: 'cd'.repeat(16) } } },
    { id: 127, call: 'watch_lease', arg: 'ef'.repeat(16), req: { watchLease: { leaseId: 'ef'.repeat(16) } } },
    { id: 128, call: 'acquire_lease', arg: 'règle-ü', req: { acquireLease: { rule: 'règle-ü' } } },
    { id: 129, call: 'get_lease_result', arg: '12'.repeat(16), req: { getLeaseResult: { leaseId: '12'.repeat(16) } } },
    { id: 130, call: 'get_lease_result', arg: '34'.repeat(16), nonce: 'ab'.repeat(16),
      req: { getLeaseResult: { leaseId: '34'.repeat(16), nonce: Buffer.from('ab'.repeat(16), 'hex') } } },
    { id: 131, call: 'acquire_lease', arg: 'trainer', intent, req: { acquireLease: { rule: 'trainer', intent: intentProto } } },
    { id: 132, call: 'derive_lease', arg: '56'.repeat(16), derive: { child_pid: 4_194_303 },
      req: { deriveLease: { parentLeaseId: '56'.repeat(16), childPid: 4_194_303 } } },
    { id: 133, call: 'derive_lease', arg: '78'.repeat(16), derive: { child_pid: 77, scopes: ['net', 'gpu:0'], gpus: ['0', 'GPU-ab'] },
      req: { deriveLease: { parentLeaseId: '78'.repeat(16), childPid: 77, scopes: ['net', 'gpu:0'], gpus: ['0', 'GPU-ab'] } } },
    { id: 134, call: 'acquire_lease', arg: 'governed', authorizations: ['eyJhbGciOiJFUzI1NiJ9.e30.c2ln', 'x.y.z'],
      req: { acquireLease: { rule: 'governed', authorizations: ['eyJhbGciOiJFUzI1NiJ9.e30.c2ln', 'x.y.z'] } } },
  ];
  return cases.map(({ id, call, arg, nonce, intent: i, derive, authorizations, req }) => ({ id: String(id), call, arg, nonce, intent: i, derive, authorizations,
    hex: hex(v1.Request.encode({ id, ...req }).finish()) }));
}

function goldenResponses() {
  const lease = { leaseId: '0123456789abcdef'.repeat(2), token: { token: bytes(150, 7), signature: bytes(64, 9) }, expiresAtMs: 1_700_000_000_123, rule: 'trainer', scopes: ['gpu:0', 'gpu:1'] };
  const leaseView = { lease_id: lease.leaseId, expires_at_ms: lease.expiresAtMs, rule: lease.rule, scopes: lease.scopes, token: hex(lease.token.token), signature: hex(lease.token.signature) };
  const status = {
    state: v1.GetStatusResponse.State.UNTRUSTED, epoch: U64_MAX as unknown as number, reasons: ['pcr sha256:16 differs', 'second reason'],
    appraisedAtMs: 1_700_000_000_000, validUntilMs: 1_700_000_020_000, sessionPublicKey: bytes(32, 1),
    akPublicPem: '-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n', policySha256: bytes(32, 2), activeLeases: 3,
  };
  const cases: { id: number; result: string; res: attestd.lease.v1.IResponse; expect?: unknown }[] = [
    { id: 5, result: 'error', res: { error: { code: 'NOT_TRUSTED', message: 'the host is not in a trusted state' } }, expect: { code: 'NOT_TRUSTED', message: 'the host is not in a trusted state' } },
    { id: 6, result: 'acquire_lease', res: { acquireLease: { lease } }, expect: leaseView },
    { id: 7, result: 'renew_lease', res: { renewLease: { lease: { ...lease, scopes: [] } } }, expect: { ...leaseView, scopes: [] } },
    { id: 8, result: 'release_lease', res: { releaseLease: {} } },
    { id: 9, result: 'lease_event', res: { leaseEvent: { kind: v1.LeaseEvent.Kind.ACTIVE, leaseId: lease.leaseId, lease } }, expect: { kind: 'ACTIVE', lease_id: lease.leaseId, reason_code: '', reason: '', lease: leaseView } },
    { id: 9, result: 'lease_event', res: { leaseEvent: { kind: v1.LeaseEvent.Kind.REVOKED, leaseId: lease.leaseId, reasonCode: 'NOT_TRUSTED', reason: 'pcr drift' } }, expect: { kind: 'REVOKED', lease_id: lease.leaseId, reason_code: 'NOT_TRUSTED', reason: 'pcr drift', lease: null } },
    { id: 10, result: 'get_status', res: { getStatus: status }, expect: {
      state: 'UNTRUSTED', epoch: '18446744073709551615', reasons: status.reasons, appraised_at_ms: status.appraisedAtMs, valid_until_ms: status.validUntilMs,
      session_public_key: hex(status.sessionPublicKey), ak_public_pem: status.akPublicPem, policy_sha256: hex(status.policySha256), active_leases: 3,
    } },
    { id: 11, result: 'get_status', res: { getStatus: {} }, expect: { state: 'STATE_UNSPECIFIED', epoch: '0', reasons: [], appraised_at_ms: 0, valid_until_ms: 0, session_public_key: '', ak_public_pem: '', policy_sha256: '', active_leases: 0 } },
    { id: 14, result: 'derive_lease', res: { deriveLease: { lease } }, expect: leaseView },
    { id: 13, result: 'get_lease_result', res: { getLeaseResult: { bundle: '{"attestd_result":"bundle/v1"}' } }, expect: { bundle: '{"attestd_result":"bundle/v1"}' } },
    // A result this client does not decode (VerifyLease): reported as unknown, not an error.
    { id: 12, result: 'unknown', res: { verifyLease: { signatureValid: true, live: true } } },
  ];
  return cases.map(({ id, result, res, expect }) => ({ id: String(id), result, expect, hex: hex(v1.Response.encode({ id, ...res }).finish()) }));
}

function python(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 90_000): Promise<{ code: number | null; out: string }> {
  return new Promise((res) => {
    const p = spawn('python3', args, { cwd: PY_DIR, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      res({ code, out });
    });
  });
}

describe('Python client', () => {
  // Version 2 with a lineage, so the client's derive is answered with a lease.
  const env = sharedDaemon(testPolicy({ extra: '    lineage: { max_depth: 1 }' }).replace('version: 1', 'version: 2'));
  let dir = '';
  let golden = '';

  beforeAll(async () => {
    // The client needs nothing but a Python 3 interpreter; install one on a bare machine (root).
    if (spawnSync('sh', ['-c', 'command -v python3']).status !== 0) {
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      spawnSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore', timeout: 240_000 });
      spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'python3'], { env, stdio: 'ignore', timeout: 280_000 });
    }
    dir = await mkdtemp(join(tmpdir(), 'attestd-py-'));
    golden = join(dir, 'golden.json');
    await writeFile(golden, JSON.stringify({ requests: goldenRequests(), responses: goldenResponses() }));
  }, 600_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('the golden status carries a 64-bit epoch at its maximum', () => {
    // protobufjs decodes uint64 to a (lossy) number without the long package; check the wire:
    // field 2, varint 2^64 - 1 (nine 0xff bytes then 0x01).
    expect(goldenResponses().find((r) => r.id === '10')!.hex).toContain('10' + 'ff'.repeat(9) + '01');
  });

  it('passes its unittest suite against golden bytes and a live daemon', async () => {
    const { tpm, d } = env();
    const r = await python(['-m', 'unittest', '-v', 'test_attestd_client'], { ATTESTD_GOLDEN: golden, ATTESTD_SOCKET: d.socket, ATTESTD_TEST_TCTI: tpm.tcti });
    expect(r.out).not.toMatch(/skipped '/);
    expect(r.out).toMatch(/\nOK\s*$/);
    expect(r.code, r.out).toBe(0);
    expect(Number(/Ran (\d+) tests/.exec(r.out)?.[1])).toBeGreaterThanOrEqual(15);
  }, 120_000);

  it('fails the suite when a golden byte differs (the comparison can fail)', async () => {
    const tampered = JSON.parse(JSON.stringify({ requests: goldenRequests(), responses: goldenResponses() })) as { requests: { hex: string }[] };
    const first = tampered.requests[0]!;
    first.hex = first.hex.slice(0, -2) + '01';
    const path = join(dir, 'tampered.json');
    await writeFile(path, JSON.stringify(tampered));
    const r = await python(['-m', 'unittest', 'test_attestd_client.GoldenTest'], { ATTESTD_GOLDEN: path });
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/FAILED/);
  });
});
