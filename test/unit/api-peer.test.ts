import { describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { ExeDigestCache, MAX_PENDING_HASHES, exeKey, type ExeHasher } from '../../daemon/api/exe-digests.js';
import { parseIds, requireConnectCredentials } from '../../daemon/api/peer.js';
import type { FileDigest } from '../../daemon/native.js';

const version = { dev: 2049n, ino: 1234n, size: 4096n, mtimeNs: 1_700_000_000_000_000_000n, ctimeNs: 1_700_000_000_000_000_001n };
const key = exeKey(version);

function status(uid: string, gid: string): string {
  return `Name:\ttrainer\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t42\nPid:\t42\nPPid:\t1\nUid:\t${uid}\nGid:\t${gid}\nFDSize:\t64\n`;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'resolved',
    (err: unknown) => (err instanceof AttestdError ? err.code : String(err)),
  );
}

describe('credentials in /proc/PID/status', () => {
  it('reads the real and effective ids', () => {
    expect(parseIds(status('1000\t1001\t1002\t1003', '10\t11\t12\t13'), 'Uid')).toEqual({ real: 1000, effective: 1001 });
    expect(parseIds(status('1000\t1001\t1002\t1003', '10\t11\t12\t13'), 'Gid')).toEqual({ real: 10, effective: 11 });
  });

  it('refuses lines that are missing, short, long or not numbers', () => {
    for (const bad of ['', 'Name:\tx\n', status('0\t0\t0', '0\t0\t0\t0'), status('0\t0\t0\t0\t0', '0\t0\t0\t0'), status('0\t-1\t0\t0', '0\t0\t0\t0'),
      status('0\t0x1\t0\t0', '0\t0\t0\t0'), status('0\t99999999999\t0\t0', '0\t0\t0\t0')]) {
      expect(() => parseIds(bad, 'Uid')).toThrow(AttestdError);
    }
  });

  it('accepts a caller with the ids it connected with, and refuses one whose real or effective uid or gid changed', () => {
    const peer = { uid: 1000, gid: 100 };
    expect(() => requireConnectCredentials(peer, status('1000\t1000\t0\t1000', '100\t100\t100\t100'))).not.toThrow();
    for (const [uid, gid] of [['0\t1000\t1000\t1000', '100\t100\t100\t100'], ['1000\t0\t1000\t0', '100\t100\t100\t100'],
      ['1000\t1000\t1000\t1000', '0\t100\t100\t100'], ['1000\t1000\t1000\t1000', '100\t0\t100\t0']] as const) {
      expect(() => requireConnectCredentials(peer, status(uid, gid))).toThrow(
        expect.objectContaining({ code: 'PEER_UNIDENTIFIED' }) as unknown as Error,
      );
    }
  });
});

describe('executable digest cache', () => {
  const digest = Buffer.alloc(32, 7);

  it('hashes each key once, concurrent callers included', async () => {
    let calls = 0;
    const cache = new ExeDigestCache(8, () => {
      calls++;
      return Promise.resolve({ digest, ...version });
    });
    const all = await Promise.all([cache.get(key, 3), cache.get(key, 4), cache.get(key, 5)]);
    expect(await cache.get(key, 6)).toBe(digest);
    expect(all.every((d) => d === digest)).toBe(true);
    expect(calls).toBe(1);
  });

  it('refuses, and does not keep, a digest of another version of the file than the key names', async () => {
    let calls = 0;
    const results: FileDigest[] = [{ digest, ...version, ctimeNs: version.ctimeNs + 1n }, { digest, ...version }];
    const cache = new ExeDigestCache(8, () => Promise.resolve(results[calls++]!));
    expect(await codeOf(cache.get(key, 3))).toBe('PEER_UNIDENTIFIED');
    // The refused result was not cached: the next caller gets a fresh hash.
    expect(await cache.get(key, 3)).toBe(digest);
    expect(calls).toBe(2);
  });

  it('forgets failures, so the next caller tries again', async () => {
    let calls = 0;
    const hasher: ExeHasher = () => (++calls === 1 ? Promise.reject(new AttestdError('NATIVE_IO_FAILED')) : Promise.resolve({ digest, ...version }));
    const cache = new ExeDigestCache(8, hasher);
    expect(await codeOf(cache.get(key, 3))).toBe('NATIVE_IO_FAILED');
    expect(await cache.get(key, 3)).toBe(digest);
  });

  it('bounds the hashes waiting at once', async () => {
    // The descriptor number stands for the inode here, so every key is its own file.
    const keyOf = (ino: number) => exeKey({ ...version, ino: BigInt(ino) });
    const waiting: (() => void)[] = [];
    const cache = new ExeDigestCache(10_000, (fd) =>
      new Promise((resolve) => waiting.push(() => resolve({ digest, ...version, ino: BigInt(fd) }))));
    const pending = Array.from({ length: MAX_PENDING_HASHES }, (_, i) => cache.get(keyOf(i), i));
    expect(await codeOf(cache.get(keyOf(MAX_PENDING_HASHES), MAX_PENDING_HASHES))).toBe('PEER_UNIDENTIFIED');
    // A key already being hashed still joins its hash.
    const joined = cache.get(keyOf(0), 0);
    for (const release of waiting) release();
    await Promise.all(pending);
    expect(await joined).toBe(digest);
    expect(waiting).toHaveLength(MAX_PENDING_HASHES);
    // Once they are done there is room again.
    const next = cache.get(keyOf(MAX_PENDING_HASHES), MAX_PENDING_HASHES);
    waiting.at(-1)!();
    expect(await next).toBe(digest);
  });
});
