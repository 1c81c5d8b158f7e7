import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { formatDuration, parseDuration } from '../../daemon/policy/duration.js';
import { PolicyError, formatProblems, parsePolicy } from '../../daemon/policy/parse.js';
import { loadPolicyFile } from '../../daemon/config/policy-file.js';

const Z64 = '0'.repeat(64);
const A64 = 'ab'.repeat(32);
const B64 = 'CD'.repeat(32);
const A96 = '1f'.repeat(48);

const full = `version: 1
allow_sha1: true
attestation:
  interval: 500ms
  max_age: 1m
pcrs:
  sha512:
    1: "${'ee'.repeat(64)}"
  sha256:
    16: ["${A64}", "${B64}", "${A64.toUpperCase()}"]
    7: "${Z64}"
  sha384:
    23: "${A96}"
  sha1:
    0: "${'11'.repeat(20)}"
rules:
  - name: trainer
    match:
      uids: [1000, 1001]
      gids: [100]
      exe_paths: ["/usr/bin/python3.11"]
      exe_sha256: ["${A64}"]
      cgroup_prefixes: ["/system.slice/", "/kubepods.slice/pod1"]
    lease:
      ttl: 2h
      scopes: ["gpu:all", "has space"]
  - name: ops_2
    match: { uids: [0] }
    lease: { ttl: 1s, scopes: ["x"] }
`;

describe('parsePolicy on valid input', () => {
  it('converts every field to typed values', () => {
    const loaded = parsePolicy(full, 'full.yaml');
    const p = loaded.policy;
    expect(p.version).toBe(1);
    expect(p.intervalMs).toBe(500);
    expect(p.maxAgeMs).toBe(60_000);
    expect(p.allowSha1).toBe(true);
    // Banks in fixed order, PCRs ascending, whatever the file order.
    expect(p.pcrs.map((r) => `${r.alg}:${r.index}`)).toEqual(['sha1:0', 'sha256:7', 'sha256:16', 'sha384:23', 'sha512:1']);
    const pcr16 = p.pcrs.find((r) => r.alg === 'sha256' && r.index === 16);
    // Hex is case-insensitive and an upper-case repeat of a value is the same value.
    expect(pcr16?.allowed.map((b) => b.toString('hex'))).toEqual([A64, B64.toLowerCase()]);
    expect(p.pcrs[0]?.allowed[0]?.length).toBe(20);
    expect(p.rules).toHaveLength(2);
    const [trainer, ops] = p.rules;
    expect(trainer?.name).toBe('trainer');
    expect(trainer?.ttlMs).toBe(7_200_000);
    expect(trainer?.scopes).toEqual(['gpu:all', 'has space']);
    expect(trainer?.match.uids).toEqual([1000, 1001]);
    expect(trainer?.match.gids).toEqual([100]);
    expect(trainer?.match.exePaths).toEqual(['/usr/bin/python3.11']);
    expect(trainer?.match.exeSha256?.map((b) => b.toString('hex'))).toEqual([A64]);
    expect(trainer?.match.cgroupPrefixes).toEqual(['/system.slice/', '/kubepods.slice/pod1']);
    expect(ops?.match).toEqual({ uids: [0] });
    expect(ops?.ttlMs).toBe(1000);
  });

  it('records the file name, the text and the SHA-256 of its UTF-8 bytes', () => {
    const loaded = parsePolicy(full, 'full.yaml');
    expect(loaded.file).toBe('full.yaml');
    expect(loaded.text).toBe(full);
    expect(loaded.digest.toString('hex')).toBe(createHash('sha256').update(full, 'utf8').digest('hex'));
    const other = parsePolicy(`${full}# a comment changes the digest\n`, 'full.yaml');
    expect(other.digest.equals(loaded.digest)).toBe(false);
  });

  it('defaults allow_sha1 to false', () => {
    const text = full.replace('allow_sha1: true\n', '').replace(/ {2}sha1:\n.*\n/, '');
    expect(parsePolicy(text, 'x.yaml').policy.allowSha1).toBe(false);
  });
});

describe('shipped policies', () => {
  it('policies/dev.yaml pins sha256 PCRs 0-7 and 16 to zero with one rule for uid 0 and 1000', async () => {
    const { policy } = await loadPolicyFile('policies/dev.yaml');
    expect(policy.intervalMs).toBe(2000);
    expect(policy.maxAgeMs).toBe(6000);
    expect(policy.pcrs.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 16]);
    for (const r of policy.pcrs) {
      expect(r.alg).toBe('sha256');
      expect(r.allowed).toEqual([Buffer.alloc(32)]);
    }
    expect(policy.rules).toEqual([{ name: 'dev', match: { uids: [0, 1000] }, ttlMs: 30_000, scopes: ['gpu:all'] }]);
  });

  it('policies/reference.yaml loads and uses every selector', async () => {
    const { policy } = await loadPolicyFile('policies/reference.yaml');
    const selectors = new Set(policy.rules.flatMap((r) => Object.keys(r.match)));
    expect([...selectors].sort()).toEqual(['cgroupPrefixes', 'exePaths', 'exeSha256', 'gids', 'uids']);
    expect(new Set(policy.pcrs.map((r) => r.alg)).size).toBeGreaterThan(1);
  });
});

describe('loadPolicyFile', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'attestd-policy-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('hashes the exact bytes, including a byte-order mark', async () => {
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), await readFile('policies/dev.yaml')]);
    const file = join(dir, 'bom.yaml');
    await writeFile(file, bytes);
    const loaded = await loadPolicyFile(file);
    expect(loaded.digest.toString('hex')).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(loaded.file).toBe(file);
  });

  it('refuses a missing file, a directory and a file over 1 MiB as POLICY_UNREADABLE', async () => {
    const big = join(dir, 'big.yaml');
    await writeFile(big, Buffer.alloc(1024 * 1024 + 1, 0x20));
    for (const path of [join(dir, 'absent.yaml'), dir, big]) {
      const err = await loadPolicyFile(path).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AttestdError);
      expect(err).not.toBeInstanceOf(PolicyError);
      expect((err as AttestdError).code).toBe('POLICY_UNREADABLE');
    }
  });

  it('refuses bytes that are not UTF-8 as POLICY_INVALID', async () => {
    const file = join(dir, 'latin1.yaml');
    await writeFile(file, Buffer.from([0x76, 0x65, 0x72, 0xff, 0x3a, 0x20, 0x31, 0x0a]));
    const err = await loadPolicyFile(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).problems[0]).toMatchObject({ file, line: 1, column: 1, message: 'expected UTF-8 text' });
  });

  it('refuses text over 1 MiB in parsePolicy too', () => {
    const err = (() => {
      try {
        parsePolicy(`# ${'x'.repeat(1024 * 1024)}\n`, 'huge.yaml');
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).code).toBe('POLICY_INVALID');
  });
});

describe('formatProblems and PolicyError', () => {
  it('formats one problem per line as file:line:column: path: message', () => {
    const text = formatProblems([
      { file: 'a.yaml', line: 3, column: 5, path: 'rules[0].lease.ttl', message: 'expected x' },
      { file: 'a.yaml', line: 1, column: 1, path: '', message: 'expected y' },
    ]);
    expect(text).toBe('a.yaml:3:5: rules[0].lease.ttl: expected x\na.yaml:1:1: expected y');
  });

  it('orders problems by position and carries them on the error', () => {
    const err = new PolicyError([
      { file: 'a.yaml', line: 9, column: 1, path: 'b', message: 'm2' },
      { file: 'a.yaml', line: 2, column: 7, path: 'a', message: 'm1' },
      { file: 'a.yaml', line: 2, column: 7, path: 'a', message: 'm1' },
    ]);
    expect(err.code).toBe('POLICY_INVALID');
    expect(err.problems.map((p) => p.line)).toEqual([2, 9]);
    expect(err.message).toBe('a.yaml:2:7: a: m1\na.yaml:9:1: b: m2');
  });
});

describe('durations', () => {
  it('parses integer + unit only', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('2s')).toBe(2000);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    for (const bad of ['', '5', 's', '1.5s', '-1s', '1h30m', ' 1s', '1S', '1000000000ms', '1d', '2 s']) {
      expect(parseDuration(bad)).toBeUndefined();
    }
  });

  it('formats in the largest exact unit', () => {
    expect([0, 500, 1000, 1500, 60_000, 90_000, 3_600_000].map(formatDuration)).toEqual([
      '0ms', '500ms', '1s', '1500ms', '1m', '90s', '1h',
    ]);
  });
});
