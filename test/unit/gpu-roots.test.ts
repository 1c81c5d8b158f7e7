// --gpu-roots DIR: device/ and rim/ root folders, each replacing its pinned NVIDIA root; a root
// NVIDIA's profile would not accept, or a folder with neither, refuses the start.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGpuTrustRoots } from '../../daemon/config/gpu-roots.js';
import { makeTestPki, writeGpuRoots, type TestPki } from '../helpers/gpu-pki.js';

let dir: string;
let dev: TestPki;
let rim: TestPki;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'attestd-gpu-roots-'));
  dev = makeTestPki(dir, 'device');
  rim = makeTestPki(dir, 'rim');
});

describe('readGpuTrustRoots', () => {
  it('reads device/ and rim/; a missing subfolder leaves that PKI on its pinned root', () => {
    const both = readGpuTrustRoots(writeGpuRoots(join(dir, 'a'), dev, rim));
    expect(both.deviceRoots?.map((b) => b.toString())).toEqual([dev.rootPem]);
    expect(both.rimRoots?.map((b) => b.toString())).toEqual([rim.rootPem]);
    const deviceOnly = readGpuTrustRoots(writeGpuRoots(join(dir, 'b'), dev));
    expect(deviceOnly.rimRoots).toBeUndefined();
  });

  it('refuses a folder with neither, an empty subfolder, a file that is no P-384 root, a missing folder', () => {
    const none = join(dir, 'none');
    mkdirSync(none);
    expect(() => readGpuTrustRoots(none)).toThrow(/neither a device\/ nor a rim\/ folder/);
    mkdirSync(join(none, 'device'));
    expect(() => readGpuTrustRoots(none)).toThrow(/holds no root certificate/);
    writeFileSync(join(none, 'device', 'junk.pem'), 'not a certificate');
    expect(() => readGpuTrustRoots(none)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    const p256 = join(dir, 'p256');
    mkdirSync(join(p256, 'device'), { recursive: true });
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(p256, 'k'),
      '-out', join(p256, 'device', 'root.pem'), '-days', '1', '-subj', '/CN=P-256 root'], { stdio: 'pipe' });
    expect(() => readGpuTrustRoots(p256)).toThrow(/not a root certificate NVIDIA's profile accepts/);
    expect(() => readGpuTrustRoots(join(dir, 'absent'))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
