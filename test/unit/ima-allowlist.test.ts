import { describe, expect, it } from 'vitest';
import { CompiledImaAllowlist, evaluateImaAllowlist, parseImaList } from '../../daemon/verify/ima/index.js';
import { fileDigest, imaFixture, ngLine, violationLine } from './ima-helpers.js';

const hex = (i: number): string => fileDigest(i).toString('hex');

const list = parseImaList(
  ngLine('boot_aggregate', fileDigest(0)) +
    ngLine('/usr/bin/bash', fileDigest(1)) +
    ngLine('/usr/bin/evil', fileDigest(2)) +
    ngLine('/tmp/build/a.out', fileDigest(3)) +
    ngLine('/tmpfoo/x', fileDigest(4)) +
    ngLine('/var/cache', fileDigest(5)) +
    ngLine('/var/cache/y', fileDigest(6)) +
    violationLine('/var/log/syslog') +
    ngLine('/usr/bin/bash', fileDigest(7)),
);

describe('IMA allowlist', () => {
  const allowlist = {
    digests: new Map([
      ['/usr/bin/bash', new Set([hex(1)])],
      ['/usr/bin/evil', new Set([`sha256:${hex(99)}`])],
    ]),
    excludes: ['/tmp/', '/var/cache'],
  };

  it('names line, path and digest of every entry not allowed, and exposes boot_aggregate', () => {
    const r = evaluateImaAllowlist(list, allowlist);
    expect(r.ok).toBe(false);
    expect(r.bootAggregate?.line).toBe(1);
    expect(r.reasons).toEqual([
      `IMA entry 3 /usr/bin/evil sha256:${hex(2)} not in allowlist`,
      `IMA entry 5 /tmpfoo/x sha256:${hex(4)} not in allowlist`,
      'IMA entry 8 /var/log/syslog: measurement violation',
      `IMA entry 9 /usr/bin/bash sha256:${hex(7)} not in allowlist`,
    ]);
    expect(r).toMatchObject({ failures: 4, appraised: 8, excluded: 3 });
  });

  it('excludes respect path boundaries: "/tmp/" and exact-or-under "/var/cache"', () => {
    const c = new CompiledImaAllowlist(allowlist);
    expect(['/tmp/x', '/var/cache', '/var/cache/y'].map((p) => c.isExcluded(p))).toEqual([true, true, true]);
    expect(['/tmp', '/tmpfoo/x', '/var/cachex', '/var/cach'].map((p) => c.isExcluded(p))).toEqual([false, false, false, false]);
  });

  it('allowUnknownPaths lets unnamed paths pass but still checks named ones', () => {
    const r = evaluateImaAllowlist(list, { ...allowlist, allowUnknownPaths: true, allowViolations: true });
    expect(r.reasons.map((s) => s.split(' ').slice(0, 4).join(' '))).toEqual(['IMA entry 3 /usr/bin/evil', 'IMA entry 9 /usr/bin/bash']);
  });

  it('takes a list of digests, with and without paths, case-insensitive, prefixed or bare', () => {
    const r = evaluateImaAllowlist(list, {
      digests: [
        { path: '/usr/bin/bash', digest: hex(1).toUpperCase() },
        { path: '/usr/bin/bash', digest: `sha256:${hex(7)}` },
        { digest: hex(2) },
        { path: '/tmpfoo/x', digest: hex(4) },
      ],
      excludes: ['/tmp/', '/var/cache/', '/var/cache', '/var/log/'],
    });
    expect(r.reasons).toEqual([]);
    expect(r.ok).toBe(true);
  });

  it('a digest under another algorithm name does not match', () => {
    const r = evaluateImaAllowlist(list.slice(1, 2), { digests: [{ path: '/usr/bin/bash', digest: `sha3-256:${hex(1)}` }], excludes: [] });
    expect(r.failures).toBe(1);
  });

  it('a path listed with no digests fails even with allowUnknownPaths', () => {
    const r = evaluateImaAllowlist(list.slice(1, 2), { digests: new Map([['/usr/bin/bash', new Set<string>()]]), excludes: [], allowUnknownPaths: true });
    expect(r.failures).toBe(1);
  });

  it('appraises a later entry named boot_aggregate as a file', () => {
    const entries = parseImaList(ngLine('/a', fileDigest(1)) + ngLine('boot_aggregate', fileDigest(2)));
    const r = evaluateImaAllowlist(entries, { digests: [{ digest: hex(1) }], excludes: [] });
    expect(r.bootAggregate).toBeUndefined();
    expect(r.reasons).toEqual([`IMA entry 2 boot_aggregate sha256:${hex(2)} not in allowlist`]);
  });

  it('caps the reasons and counts the rest', () => {
    const entries = parseImaList(imaFixture('rustkeylime_ascii_runtime_measurements_ima-ng_sha1.txt'));
    const r = evaluateImaAllowlist(entries, { digests: [], excludes: [] }, { maxReasons: 10 });
    expect(r.failures).toBe(825);
    expect(r.reasons.length).toBe(11);
    expect(r.reasons[0]).toBe('IMA entry 2 /init sha1:19f13b42c2745066347e76454788c0fe083643f3 not in allowlist');
    expect(r.reasons[10]).toBe('and 815 more IMA entries not in allowlist');
  });

  it('refuses malformed allowlists', () => {
    expect(() => new CompiledImaAllowlist({ digests: [{ digest: 'xyz' }], excludes: [] })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => new CompiledImaAllowlist({ digests: [], excludes: [''] })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
