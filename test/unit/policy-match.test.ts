import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../daemon/policy/parse.js';
import { cgroupHasPrefix, matchRule } from '../../daemon/policy/match.js';
import type { WorkloadIdentity } from '../../daemon/base/workload-identity.js';
import type { Policy } from '../../daemon/policy/types.js';

const PY = Buffer.alloc(32, 0x11);
const OTHER = Buffer.alloc(32, 0x22);

const policy = parsePolicy(
  `version: 1
attestation: { interval: 2s, max_age: 6s }
pcrs: { sha256: { 0: "${'0'.repeat(64)}" } }
rules:
  - name: trainer
    match:
      uids: [1000, 1001]
      exe_paths: ["/usr/bin/python3.11", "/opt/py/bin/python"]
      exe_sha256: ["${PY.toString('hex')}"]
    lease: { ttl: 30s, scopes: [gpu] }
  - name: service
    match:
      cgroup_prefixes: ["/system.slice/train.service", "/kubepods.slice/"]
      gids: [50]
    lease: { ttl: 30s, scopes: [gpu] }
  - name: any-root
    match: { uids: [0] }
    lease: { ttl: 5s, scopes: [gpu] }
`,
  'm.yaml',
).policy;

function who(over: Partial<WorkloadIdentity>): WorkloadIdentity {
  return {
    pid: 4242,
    uid: 1000,
    gid: 1000,
    startTime: 123n,
    exePath: '/usr/bin/python3.11',
    exeSha256: PY,
    cgroup: '/user.slice/user-1000.slice/session-1.scope',
    ...over,
  };
}

describe('matchRule', () => {
  it('matches when every selector matches (AND), any entry within a list (OR)', () => {
    expect(matchRule(policy, who({}))?.name).toBe('trainer');
    expect(matchRule(policy, who({ uid: 1001, exePath: '/opt/py/bin/python' }))?.name).toBe('trainer');
  });

  it('does not match when one selector fails, even if the others match', () => {
    expect(matchRule(policy, who({ uid: 1002 }))).toBeUndefined();
    expect(matchRule(policy, who({ exePath: '/usr/bin/python3' }))).toBeUndefined();
    expect(matchRule(policy, who({ exeSha256: OTHER }))).toBeUndefined();
  });

  it('compares executable paths exactly, not by prefix or case', () => {
    expect(matchRule(policy, who({ exePath: '/usr/bin/python3.11x' }))).toBeUndefined();
    expect(matchRule(policy, who({ exePath: '/USR/bin/python3.11' }))).toBeUndefined();
  });

  it('matches cgroups on path boundaries', () => {
    const svc = (cgroup: string, gid = 50): string | undefined => matchRule(policy, who({ uid: 7, gid, cgroup }))?.name;
    expect(svc('/system.slice/train.service')).toBe('service');
    expect(svc('/system.slice/train.service/worker')).toBe('service');
    expect(svc('/system.slice/train.service2')).toBeUndefined();
    expect(svc('/system.slice/train.servic')).toBeUndefined();
    expect(svc('/kubepods.slice/pod-1/ctr')).toBe('service');
    expect(svc('/kubepods.slice')).toBeUndefined();
    expect(svc('/system.slice/train.service', 51)).toBeUndefined();
  });

  it('returns the first matching rule in file order', () => {
    const both: Policy = {
      ...policy,
      rules: [
        { name: 'second', match: { uids: [0] }, ttlMs: 1000, scopes: ['a'] },
        ...policy.rules,
      ],
    };
    expect(matchRule(both, who({ uid: 0 }))?.name).toBe('second');
    expect(matchRule(policy, who({ uid: 0 }))?.name).toBe('any-root');
  });

  it('never matches a hand-built rule without selectors or with an empty list', () => {
    const p: Policy = {
      ...policy,
      rules: [
        { name: 'none', match: {}, ttlMs: 1000, scopes: ['a'] },
        { name: 'empty', match: { uids: [] }, ttlMs: 1000, scopes: ['a'] },
      ],
    };
    expect(matchRule(p, who({}))).toBeUndefined();
  });
});

describe('cgroupHasPrefix', () => {
  it.each([
    ['/a/b', '/a/b', true],
    ['/a/b/c', '/a/b', true],
    ['/a/bc', '/a/b', false],
    ['/a', '/a/b', false],
    ['/a/b/c', '/a/b/', true],
    ['/a/b', '/a/b/', false],
    ['/a/bc', '/a/', true],
    ['/anything', '/', true],
    ['/a', '', false],
  ])('%s under %s is %s', (cgroup, prefix, expected) => {
    expect(cgroupHasPrefix(cgroup, prefix)).toBe(expected);
  });
});
