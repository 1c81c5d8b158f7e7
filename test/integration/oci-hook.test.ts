/**
 * attestd-oci-hook, run as a runtime would run it (the compiled dist/ build, the OCI state on
 * standard input), against a live daemon on a software TPM; and its state parser under
 * arbitrary input.
 */
import { spawn } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_STATE_BYTES, OciStateError, parseOciState, requestedRule } from '../../daemon/hooks/oci-state.js';
import { sharedDaemon, State } from '../helpers/daemon.js';
import { tpm2 } from '../helpers/swtpm.js';

const HOOK = resolve(import.meta.dirname, '../../dist/daemon/hooks/oci-hook.js');

function runHook(args: string[], stdin: string | Buffer): Promise<{ code: number | null; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [HOOK, ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.on('exit', (code) => {
      clearTimeout(t);
      res({ code, stderr });
    });
    p.stdin.on('error', () => undefined); // the hook may stop reading an oversized input
    p.stdin.end(stdin);
  });
}

function state(over: Record<string, unknown> = {}): string {
  return JSON.stringify({ ociVersion: '1.1.0', id: 'c0ffee01', status: 'creating', pid: process.pid, bundle: '/run/containerd/bundle/c0ffee01', annotations: { 'attestd.io/rule': 'tests' }, ...over });
}

describe('attestd-oci-hook against a live daemon', () => {
  const env = sharedDaemon();
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'attestd-hook-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('admits a container while the host is trusted, writes a verifiable receipt and releases the lease', async () => {
    const { d } = env();
    const receipts = join(dir, 'receipts');
    const r = await runHook(['--socket', d.socket, '--receipt-dir', receipts], state());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/container c0ffee01 admitted under rule tests/);
    const receipt = JSON.parse(await readFile(join(receipts, 'c0ffee01.json'), 'utf8'));
    expect(receipt).toMatchObject({ container_id: 'c0ffee01', container_pid: process.pid, rule: 'tests', scopes: ['gpu:all'] });
    const status = await d.status();
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(status.sessionPublicKey).toString('base64url') }, format: 'jwk' });
    const signed = Buffer.concat([Buffer.from('attestd/lease-token/v1'), Buffer.from(receipt.token_base64, 'base64')]);
    expect(verify(null, signed, key, Buffer.from(receipt.signature_base64, 'base64'))).toBe(true);
    expect(status.activeLeases).toBe(0);
  });

  it('uses the first matching rule without an annotation, and --rule as the default', async () => {
    const { d } = env();
    expect((await runHook(['--socket', d.socket], state({ annotations: {} }))).code).toBe(0);
    expect((await runHook(['--socket', d.socket, '--rule', 'tests'], state({ annotations: undefined }))).code).toBe(0);
  });

  it('refuses a container whose rule the hook does not match', async () => {
    const { d } = env();
    const r = await runHook(['--socket', d.socket], state({ annotations: { 'attestd.io/rule': 'gpu-trainers' } }));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/container c0ffee01 refused by attestd: NO_MATCHING_RULE/);
  });

  it('refuses malformed input with a clear message and exit code 2', async () => {
    const { d } = env();
    const cases: [string | Buffer, RegExp][] = [
      ['{"ociVersion": "1.1.0", "id": ', /malformed OCI state on standard input: state is not valid JSON/],
      ['', /no state on standard input/],
      ['[]', /not a JSON object/],
      [state({ id: '../../etc/passwd' }), /id holds characters/],
      [state({ pid: -4 }), /pid is not a process id/],
      [state({ bundle: 'relative/path' }), /bundle is not an absolute path/],
      [state({ annotations: { 'attestd.io/rule': 'Not A Rule!' } }), /attestd.io\/rule is not a policy rule name/],
      [Buffer.alloc(MAX_STATE_BYTES + 10, 0x20), /larger than/],
    ];
    for (const [input, message] of cases) {
      const r = await runHook(['--socket', d.socket], input);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    expect((await runHook(['--timeout', 'soon'], state())).code).toBe(2);
  });

  it('refuses when the daemon is unreachable, unless the container is not annotated and --only-annotated', async () => {
    const gone = join(dir, 'absent.sock');
    const r = await runHook(['--socket', gone, '--timeout', '2'], state());
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/not admitted: attestd unreachable/);
    expect((await runHook(['--socket', gone, '--only-annotated'], state({ annotations: {} }))).code).toBe(0);
    expect((await runHook(['--socket', gone, '--only-annotated'], state())).code).toBe(3);
  });

  it('refuses every container once PCR 16 drifts, and admits again after it is restored', async () => {
    const { tpm, d } = env();
    expect((await tpm2(['pcrextend', `16:sha256=${'1'.repeat(64)}`], tpm.tcti)).code).toBe(0);
    try {
      await d.waitFor((s) => s.state === State.UNTRUSTED);
      const r = await runHook(['--socket', d.socket], state());
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/refused by attestd: NOT_TRUSTED/);
    } finally {
      expect((await tpm2(['pcrreset', '16'], tpm.tcti)).code).toBe(0);
    }
    await d.waitFor((s) => s.state === State.TRUSTED);
    expect((await runHook(['--socket', d.socket], state())).code).toBe(0);
  });
});

describe('parseOciState', () => {
  const stateArb = fc.record({
    ociVersion: fc.string({ minLength: 1, maxLength: 64 }),
    id: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.+-]{0,80}$/),
    status: fc.constantFrom('creating', 'created', 'running', 'stopped'),
    pid: fc.integer({ min: 1, max: 4_194_304 }),
    bundle: fc.string({ maxLength: 100 }).map((s) => '/' + s.replace(/\0/g, '')),
    annotations: fc.dictionary(fc.string({ maxLength: 30 }), fc.string({ maxLength: 50 }), { maxKeys: 10 }),
  });

  it('returns exactly the fields of a valid state', () => {
    fc.assert(fc.property(stateArb, (s) => {
      expect(parseOciState(Buffer.from(JSON.stringify({ ...s, extra: [1, 2] })))).toEqual(s);
    }));
  });

  it('throws only OciStateError on arbitrary bytes and arbitrary JSON', () => {
    const onlyStateErrors = (input: Uint8Array) => {
      try {
        parseOciState(input);
      } catch (err) {
        expect(err).toBeInstanceOf(OciStateError);
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), onlyStateErrors));
    fc.assert(fc.property(fc.jsonValue(), (v) => onlyStateErrors(Buffer.from(JSON.stringify(v) ?? ''))));
    fc.assert(fc.property(stateArb, fc.constantFrom('ociVersion', 'id', 'status', 'pid', 'bundle', 'annotations'), fc.jsonValue(),
      (s, key, v) => onlyStateErrors(Buffer.from(JSON.stringify({ ...s, [key]: v })))));
  });

  it('refuses ids that are not file-name safe and rule names outside the policy syntax', () => {
    for (const id of ['.', '..', 'a/b', '-x', 'a\nb', '']) {
      expect(() => parseOciState(Buffer.from(state({ id })))).toThrow(OciStateError);
    }
    const s = parseOciState(Buffer.from(state({ annotations: {} })));
    expect(requestedRule(s)).toBeUndefined();
    expect(requestedRule(s, 'fallback')).toBe('fallback');
    expect(() => requestedRule({ ...s, annotations: { 'attestd.io/rule': 'x'.repeat(65) } })).toThrow(OciStateError);
    expect(() => requestedRule({ ...s, annotations: { 'attestd.io/rule': 'UPPER' } })).toThrow(OciStateError);
  });
});
