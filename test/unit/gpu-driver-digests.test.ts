/** Driver digests over a fake file tree standing in for /proc, /lib/modules and /lib/firmware. */
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  collectFirmwareDigests, collectModuleDigests, parseProcModules, readProcDriverVersion,
} from '../../daemon/evidence/gpu/driver-digests.js';

const RELEASE = '6.1.0-test';
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
let root: string;

function put(path: string, content: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), content);
}

const PROC_MODULES = [
  'nvidia_uvm 1437696 0 - Live 0xffffffffc0a00000 (POE)',
  'nvidia_drm 77824 2 - Live 0xffffffffc09e0000 (POE)',
  'nvidia 56721408 3 nvidia_uvm,nvidia_drm, Live 0xffffffffc0200000 (POE)',
  'ext4 1007616 1 - Live 0xffffffffc0100000',
  'nvidiafb 1 0 - Live 0x0',
  '',
].join('\n');

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'attestd-gpu-tree-'));
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('kernel module digests', () => {
  it('lists the nvidia modules of /proc/modules once each, sorted', () => {
    expect(parseProcModules(PROC_MODULES)).toEqual(['nvidia', 'nvidia_drm', 'nvidia_uvm', 'nvidiafb']);
    expect(parseProcModules('nvidia 1 0 - Live 0x0\nnvidia 1 0 - Live 0x0\n../nvidia 1\n nvidia 1\n')).toEqual(['nvidia']);
    expect(parseProcModules('')).toEqual([]);
  });

  it('finds module files through modules.dep, keeping unfound modules visible', async () => {
    put('proc/modules', PROC_MODULES);
    put(`lib/modules/${RELEASE}/modules.dep`, [
      'kernel/fs/ext4/ext4.ko.zst: kernel/fs/jbd2/jbd2.ko.zst',
      'updates/dkms/nvidia.ko.zst:',
      'updates/dkms/nvidia-uvm.ko.zst: updates/dkms/nvidia.ko.zst',
      'updates/dkms/nvidia-drm.ko.zst: updates/dkms/nvidia-modeset.ko.zst',
      '',
    ].join('\n'));
    put(`lib/modules/${RELEASE}/updates/dkms/nvidia.ko.zst`, 'nvidia');
    put(`lib/modules/${RELEASE}/updates/dkms/nvidia-uvm.ko.zst`, 'uvm');
    put(`lib/modules/${RELEASE}/updates/dkms/nvidia-drm.ko.zst`, 'drm');
    const digests = await collectModuleDigests({ root, kernelRelease: RELEASE });
    expect(digests).toEqual([
      { name: 'nvidia', path: `/lib/modules/${RELEASE}/updates/dkms/nvidia.ko.zst`, sha256: sha('nvidia') },
      { name: 'nvidia_drm', path: `/lib/modules/${RELEASE}/updates/dkms/nvidia-drm.ko.zst`, sha256: sha('drm') },
      { name: 'nvidia_uvm', path: `/lib/modules/${RELEASE}/updates/dkms/nvidia-uvm.ko.zst`, sha256: sha('uvm') },
      { name: 'nvidiafb', path: '', sha256: '' },
    ]);
  });

  it('searches the release folder when there is no modules.dep', async () => {
    put('proc/modules', 'nvidia 1 0 - Live 0x0\nnvidia_uvm 1 0 - Live 0x0\n');
    put(`lib/modules/${RELEASE}/kernel/drivers/video/nvidia.ko`, 'v1');
    put(`lib/modules/${RELEASE}/kernel/drivers/video/nvidia-uvm.ko.xz`, 'uvm');
    const first = await collectModuleDigests({ root, kernelRelease: RELEASE });
    expect(first.map((d) => [d.name, d.path])).toEqual([
      ['nvidia', `/lib/modules/${RELEASE}/kernel/drivers/video/nvidia.ko`],
      ['nvidia_uvm', `/lib/modules/${RELEASE}/kernel/drivers/video/nvidia-uvm.ko.xz`],
    ]);
    put(`lib/modules/${RELEASE}/kernel/drivers/video/nvidia.ko`, 'v2');
    const second = await collectModuleDigests({ root, kernelRelease: RELEASE });
    expect(second[0]!.sha256).toBe(sha('v2'));
    expect(second[0]!.sha256).not.toBe(first[0]!.sha256);
  });

  it('asks modinfo first when told to', async () => {
    put('proc/modules', 'nvidia 1 0 - Live 0x0\nnvidia_peermem 1 0 - Live 0x0\n');
    put('opt/driver/nvidia.ko', 'from modinfo');
    put(`lib/modules/${RELEASE}/extra/nvidia-peermem.ko`, 'peermem');
    const modinfo = join(root, 'modinfo');
    writeFileSync(modinfo, '#!/bin/sh\n[ "$1" = "-n" ] || exit 2\n[ "$2" = nvidia ] && echo /opt/driver/nvidia.ko && exit 0\n' +
      'echo "modinfo: ERROR: Module $2 not found." >&2\nexit 1\n');
    chmodSync(modinfo, 0o755);
    const digests = await collectModuleDigests({ root, kernelRelease: RELEASE, useModinfo: true, modinfoPath: modinfo });
    expect(digests).toEqual([
      { name: 'nvidia', path: '/opt/driver/nvidia.ko', sha256: sha('from modinfo') },
      { name: 'nvidia_peermem', path: `/lib/modules/${RELEASE}/extra/nvidia-peermem.ko`, sha256: sha('peermem') },
    ]);
  });

  it('gives nothing without nvidia modules, and refuses a release that is not one path part', async () => {
    expect(await collectModuleDigests({ root, kernelRelease: RELEASE })).toEqual([]);
    put('proc/modules', 'nvidia 1 0 - Live 0x0\n');
    await expect(collectModuleDigests({ root, kernelRelease: '../..' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('GSP firmware digests and /proc version', () => {
  it('hashes gsp*.bin of the driver version, sorted, following symlinks', async () => {
    const fw = 'lib/firmware/nvidia/550.90.07';
    put(`${fw}/gsp_tu10x.bin`, 'tu10x');
    put(`${fw}/gsp_ga10x.bin`, 'ga10x');
    put(`${fw}/README`, 'not firmware');
    put('lib/firmware/nvidia/550.90.06/gsp_ga10x.bin', 'older');
    mkdirSync(join(root, fw, 'gsp_dir.bin'));
    symlinkSync(join(root, 'lib/firmware/nvidia/550.90.06/gsp_ga10x.bin'), join(root, fw, 'gsp_old.bin'));
    expect(await collectFirmwareDigests('550.90.07', { root })).toEqual([
      { path: `/${fw}/gsp_ga10x.bin`, sha256: sha('ga10x') },
      { path: `/${fw}/gsp_old.bin`, sha256: sha('older') },
      { path: `/${fw}/gsp_tu10x.bin`, sha256: sha('tu10x') },
    ]);
    expect(await collectFirmwareDigests('999.1', { root })).toEqual([]);
  });

  it('refuses a driver version that could leave the firmware folder', async () => {
    for (const v of ['../../etc', '550.90.07/..', '', '550']) {
      await expect(collectFirmwareDigests(v, { root })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
  });

  it('reads /proc/driver/nvidia/version, trimmed, or nothing', async () => {
    expect(await readProcDriverVersion({ root })).toBe('');
    put('proc/driver/nvidia/version', 'NVRM version: NVIDIA UNIX x86_64 Kernel Module  515.76\nGCC version: gcc 12\n\n');
    expect(await readProcDriverVersion({ root })).toBe('NVRM version: NVIDIA UNIX x86_64 Kernel Module  515.76\nGCC version: gcc 12');
  });
});
