/**
 * The real NVML binding and collector against the fake libnvidia-ml.so.1 built from
 * test/fake-nvml/fake_nvml.c, with a fake nvidia-smi and a fake driver file tree.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { GpuCollector, type GpuCollectorOptions } from '../../daemon/evidence/gpu/collector.js';
import { Nvml } from '../../daemon/evidence/gpu/nvml.js';
import { decodeGpuMeasurement } from '../../daemon/verify/gpu/measurement-decode.js';
import { type FakeNvmlConfig, fakeNvmlLibrary, twoGpuConfig, writeFakeNvmlConfig } from '../helpers/fake-nvml.js';
import { makeTestPki, testDigest } from '../helpers/gpu-pki.js';
import { gpuNonce } from '../../daemon/verify/gpu-report/nonce.js';
import { verifyGpuAttestation } from '../../daemon/verify/gpu-report/verify.js';

let dir: string;
let lib: string;
let configPath: string;
let root: string;

function smiXml(c: FakeNvmlConfig): string {
  const mode = (v: number): string => (v === 1 ? 'Enabled' : v === 0 ? 'Disabled' : 'N/A');
  const gpus = c.gpus.map((g) => `<gpu id="${g.pciBusId}"><product_name>${g.name}</product_name>
    <persistence_mode>${mode(g.persistenceMode)}</persistence_mode>
    <mig_mode><current_mig>${mode(g.migMode)}</current_mig></mig_mode>
    <serial>${g.serial}</serial><uuid>${g.uuid}</uuid><vbios_version>${g.vbiosVersion}</vbios_version>
    <inforom_version><img_version>${g.inforomVersion}</img_version></inforom_version>
    <pci><pci_bus_id>${g.pciBusId}</pci_bus_id></pci>
    <ecc_mode><current_ecc>${mode(g.eccMode)}</current_ecc></ecc_mode></gpu>`).join('\n');
  const cuda = `${Math.floor(c.cudaDriverVersion / 1000)}.${(c.cudaDriverVersion % 1000) / 10}`;
  return `<?xml version="1.0" ?>\n<nvidia_smi_log><driver_version>${c.driverVersion}</driver_version>
    <cuda_version>${cuda}</cuda_version><attached_gpus>${c.gpus.length}</attached_gpus>${gpus}</nvidia_smi_log>\n`;
}

/** A script that prints `xml` for `-q -x` and fails for anything else. */
function fakeSmi(xml: string): string {
  const out = join(dir, `smi-${createHash('sha256').update(xml).digest('hex').slice(0, 8)}.xml`);
  writeFileSync(out, xml);
  const script = `${out}.sh`;
  writeFileSync(script, `#!/bin/sh\n[ "$1 $2" = "-q -x" ] || exit 2\ncat '${out}'\n`);
  chmodSync(script, 0o755);
  return script;
}

function collector(extra: GpuCollectorOptions = {}): GpuCollector {
  return new GpuCollector({ nvmlLibraryPath: lib, nvidiaSmi: false, driver: { root, kernelRelease: '6.1.0-test' }, ...extra });
}

beforeAll(() => {
  lib = fakeNvmlLibrary();
  dir = mkdtempSync(join(tmpdir(), 'attestd-gpu-nvml-'));
  configPath = join(dir, 'fake-nvml.conf');
  root = join(dir, 'root');
  mkdirSync(join(root, 'proc'), { recursive: true });
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('NVML binding on the fake library', () => {
  it('reads a two-GPU configuration back exactly', async () => {
    writeFakeNvmlConfig(configPath, twoGpuConfig());
    const ev = await collector().collect();
    expect(ev.measurement).toEqual({
      source: 'nvml', driverVersion: '550.90.07', nvmlVersion: '12.550.90.07', cudaDriverVersion: '12.4',
      procDriverVersion: '',
      gpus: [
        {
          index: 0, name: 'NVIDIA H100 80GB HBM3', uuid: 'GPU-11111111-2222-3333-4444-555555555555',
          serial: '1650923000001', pciBusId: '00000000:18:00.0', vbiosVersion: '96.00.9F.00.01',
          inforomImageVersion: 'G520.0200.00.05', eccModeCurrent: 'enabled', migModeCurrent: 'disabled',
          persistenceMode: 'enabled', ccMode: 'on',
        },
        {
          index: 1, name: 'NVIDIA H100 80GB HBM3', uuid: 'GPU-66666666-7777-8888-9999-aaaaaaaaaaaa',
          serial: '1650923000002', pciBusId: '00000000:2A:00.0', vbiosVersion: '96.00.9F.00.01',
          inforomImageVersion: 'G520.0200.00.05', eccModeCurrent: 'enabled', migModeCurrent: 'enabled',
          persistenceMode: 'enabled', ccMode: 'on',
        },
      ],
      ccState: { environment: 'prod', ccFeature: 'enabled', devToolsMode: 'off', gpusReady: 'ready' },
      moduleDigests: [],
      firmwareDigests: [],
    });
    expect(ev.crossCheck).toEqual({ performed: false, reason: 'nvidia-smi is disabled' });
    expect(decodeGpuMeasurement(ev.encoded)).toEqual(ev.measurement);
    expect(ev.sha256).toEqual(createHash('sha256').update(ev.encoded).digest());
  });

  it('sees a changed driver version, UUID or CC mode at the next collection', async () => {
    const c = twoGpuConfig();
    writeFakeNvmlConfig(configPath, c);
    const base = await collector().collect();
    const variants: [string, (x: FakeNvmlConfig) => void, (m: typeof base.measurement) => unknown, unknown][] = [
      ['driver', (x) => { x.driverVersion = '550.90.12'; }, (m) => m.driverVersion, '550.90.12'],
      ['uuid', (x) => { x.gpus[1]!.uuid = 'GPU-00000000-0000-0000-0000-000000000001'; }, (m) => m.gpus[1]!.uuid,
        'GPU-00000000-0000-0000-0000-000000000001'],
      ['cc off', (x) => { x.cc!.feature = 0; }, (m) => [m.ccState.ccFeature, m.gpus.map((g) => g.ccMode)],
        ['disabled', ['off', 'off']]],
      ['devtools', (x) => { x.cc!.devtools = 1; }, (m) => [m.ccState.devToolsMode, m.gpus[0]!.ccMode], ['on', 'devtools']],
    ];
    const digests = new Set([base.sha256.toString('hex')]);
    for (const [, change, read, expected] of variants) {
      const changed = twoGpuConfig();
      change(changed);
      writeFakeNvmlConfig(configPath, changed);
      const ev = await collector().collect();
      expect(read(ev.measurement)).toEqual(expected);
      digests.add(ev.sha256.toString('hex'));
    }
    expect(digests.size).toBe(variants.length + 1);
    // And back: the same configuration gives the same digest.
    writeFakeNvmlConfig(configPath, c);
    expect((await collector().collect()).sha256).toEqual(base.sha256);
  });

  it('maps NOT_SUPPORTED to n/a and a driver without CC to n/a', async () => {
    const c = twoGpuConfig();
    delete c.cc;
    c.gpus[0]!.eccMode = -1;
    c.gpus[0]!.migMode = -1;
    c.fail = { nvmlDeviceGetSerial: 3 };
    writeFakeNvmlConfig(configPath, c);
    const m = (await collector().collect()).measurement;
    expect(m.gpus[0]).toMatchObject({ eccModeCurrent: 'n/a', migModeCurrent: 'n/a', serial: '', ccMode: 'n/a' });
    expect(m.ccState).toEqual({ environment: 'n/a', ccFeature: 'n/a', devToolsMode: 'n/a', gpusReady: 'n/a' });
  });

  it('surfaces an NVML error from one call as NVML_CALL_FAILED naming the code', async () => {
    const c = twoGpuConfig();
    c.fail = { nvmlDeviceGetUUID: 15 };
    writeFakeNvmlConfig(configPath, c);
    const err = await collector().collect().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AttestdError);
    expect((err as AttestdError).code).toBe('NVML_CALL_FAILED');
    expect((err as AttestdError).message).toContain('NVML_ERROR_GPU_IS_LOST');
    expect((err as AttestdError).message).toContain('nvmlDeviceGetUUID');
    // The session was shut down: the next collection, with the fault gone, works.
    writeFakeNvmlConfig(configPath, twoGpuConfig());
    expect((await collector().collect()).measurement.gpus).toHaveLength(2);
  });

  it('treats a refused nvmlInit_v2 as no driver, not as an error', async () => {
    writeFakeNvmlConfig(configPath, { ...twoGpuConfig(), fail: { nvmlInit_v2: 9 } });
    const m = (await collector().collect()).measurement;
    expect(m.source).toBe('none');
    expect(m.noDriverReason).toContain('NVML_ERROR_DRIVER_NOT_LOADED');
    expect(m.gpus).toEqual([]);
  });

  it('gives source none for a missing library, and falls back to nvidia-smi when it works', async () => {
    const missing = join(dir, 'nowhere', 'libnvidia-ml.so.1');
    const none = (await collector({ nvmlLibraryPath: missing }).collect()).measurement;
    expect(none.source).toBe('none');
    expect(none.noDriverReason).toBe('libnvidia-ml.so.1 not found');
    expect(() => Nvml.open(missing)).toThrow(expect.objectContaining({ code: 'NVML_UNAVAILABLE' }));

    const smi = fakeSmi(smiXml(twoGpuConfig()));
    const ev = await collector({ nvmlLibraryPath: missing, nvidiaSmi: { path: smi } }).collect();
    expect(ev.measurement.source).toBe('nvidia-smi');
    expect(ev.measurement.noDriverReason).toBe('libnvidia-ml.so.1 not found');
    expect(ev.measurement.gpus.map((g) => g.uuid)).toEqual(twoGpuConfig().gpus.map((g) => g.uuid));
    expect(ev.crossCheck.performed).toBe(false);
  });

  it('cross-checks NVML against nvidia-smi and names the fields that differ', async () => {
    const c = twoGpuConfig();
    writeFakeNvmlConfig(configPath, c);
    const agree = await collector({ nvidiaSmi: { path: fakeSmi(smiXml(c)) } }).collect();
    expect(agree.crossCheck).toEqual({ performed: true, mismatches: [] });
    expect(agree.measurement.source).toBe('nvml');

    const other = twoGpuConfig();
    other.gpus[1]!.vbiosVersion = '96.00.AA.00.01';
    other.driverVersion = '550.90.12';
    const differ = await collector({ nvidiaSmi: { path: fakeSmi(smiXml(other)) } }).collect();
    expect(differ.crossCheck).toEqual({
      performed: true,
      mismatches: ['driverVersion', 'gpus[GPU-66666666-7777-8888-9999-aaaaaaaaaaaa].vbiosVersion'],
    });
    // The cross-check reports; it does not change what NVML measured.
    expect(differ.sha256).toEqual(agree.sha256);
  });

  it('fetches a synthetic attestation report and certificates over the nonce', async () => {
    writeFakeNvmlConfig(configPath, twoGpuConfig());
    const nonce = createHash('sha256').update('nonce').digest();
    const ev = await collector().collect({ attestationNonce: nonce });
    expect(ev.attestation).toHaveLength(2);
    const a = ev.attestation[1]!;
    expect(a.uuid).toBe('GPU-66666666-7777-8888-9999-aaaaaaaaaaaa');
    expect(a.report).toEqual(Buffer.concat([Buffer.from('FAKE-GPU-REPORT:'), nonce, Buffer.from(a.uuid)]));
    expect(a.cecReport).toBeNull();
    expect(a.certChain.toString()).toBe(`FAKE DEVICE CERT ${a.uuid}\n`);
    expect(a.attestationCertChain.toString()).toBe(`FAKE ATTESTATION CERT ${a.uuid}\n`);
    await expect(collector().collect({ attestationNonce: Buffer.alloc(16) }))
      .rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });

    const off = twoGpuConfig();
    off.cc!.feature = 0;
    writeFakeNvmlConfig(configPath, off);
    expect((await collector().collect({ attestationNonce: nonce })).attestation).toEqual([]);
  });

  it('asks each GPU over the nonce for its UUID; a GPU with a key signs an SPDM report over it at call time', async () => {
    const pki = makeTestPki(dir, 'nvml-device');
    const cfg = twoGpuConfig();
    const measurements = [testDigest('one'), testDigest('two')];
    cfg.gpus[1] = { ...cfg.gpus[1]!, attestation: { keyPath: pki.leafKeyPath, chainPath: pki.chainPath, measurements, trailing: 1 } };
    writeFakeNvmlConfig(configPath, cfg);
    const binding = createHash('sha256').update('binding').digest();
    const ev = await collector().collect({ attestationNonce: (uuid) => gpuNonce(binding, uuid) });
    const [a0, a1] = ev.attestation;
    expect(a0!.nonce).toEqual(gpuNonce(binding, cfg.gpus[0]!.uuid));
    expect(a1!.nonce).toEqual(gpuNonce(binding, cfg.gpus[1]!.uuid));
    expect(a0!.nonce).not.toEqual(a1!.nonce);
    expect(a1!.attestationCertChain.toString()).toBe(pki.chainPem);
    const v = verifyGpuAttestation({ report: a1!.report, certChainPem: a1!.attestationCertChain, expectedNonce: a1!.nonce, roots: [pki.rootPem] });
    expect(v.blocks.map((b) => b.valueHex)).toEqual(measurements.map((m) => m.toString('hex')));
    expect([v.driverVersion, v.vbiosVersion, v.unsignedTrailingBytes]).toEqual([cfg.driverVersion, '96.00.9f.00.01', 1]);
    // Signed anew for every nonce.
    const again = await collector().collect({ attestationNonce: (uuid) => gpuNonce(createHash('sha256').update('other').digest(), uuid) });
    expect(() => verifyGpuAttestation({ report: again.attestation[1]!.report, certChainPem: pki.chainPem, expectedNonce: a1!.nonce, roots: [pki.rootPem] }))
      .toThrow(expect.objectContaining({ code: 'GPU_NONCE_MISMATCH' }));
  });

  it('fails a session that outlives its deadline, and recovers once the driver answers', async () => {
    writeFakeNvmlConfig(configPath, { ...twoGpuConfig(), delayMs: 40 });
    await expect(collector({ nvmlTimeoutMs: 20 }).collect())
      .rejects.toMatchObject({ code: 'NVML_CALL_FAILED', message: expect.stringContaining('did not answer') });
    writeFakeNvmlConfig(configPath, twoGpuConfig());
    // Queued behind the slow session, which still has to finish its calls.
    expect((await collector().collect()).measurement.gpus).toHaveLength(2);
  });

  it('keeps working on junk configuration files (the fake parses defensively)', async () => {
    const line = fc.oneof(
      fc.constantFrom('gpu_count=16', 'gpu_count=-1', 'gpu_count=99999999999999999999', 'gpu.15.uuid=GPU-x',
        'gpu.16.uuid=GPU-y', 'gpu.-1.name=z', 'gpu.0.ecc_mode=abc', 'cc.supported=1', 'fail.nvmlShutdown=1', '=', '#x=y'),
      fc.string({ maxLength: 40 }),
      fc.string({ minLength: 1000, maxLength: 3000 }).map((s) => `driver_version=${s}`),
    );
    await fc.assert(fc.asyncProperty(fc.array(line, { maxLength: 12 }), async (lines) => {
      writeFakeNvmlConfig(configPath, lines.join('\n'));
      await collector().collect().catch((err: unknown) => {
        if (!(err instanceof AttestdError)) throw err;
      });
    }), { numRuns: 40 });
  });

  it('serialises concurrent collections on one library', async () => {
    writeFakeNvmlConfig(configPath, twoGpuConfig());
    const results = await Promise.all(Array.from({ length: 6 }, () => collector().collect()));
    for (const r of results) expect(r.sha256).toEqual(results[0]!.sha256);
  });

  it('adds module and firmware digests from the driver tree', async () => {
    writeFakeNvmlConfig(configPath, twoGpuConfig());
    const tree = join(dir, 'tree');
    const modDir = join(tree, 'lib/modules/6.1.0-test/kernel/drivers/video');
    const fwDir = join(tree, 'lib/firmware/nvidia/550.90.07');
    mkdirSync(modDir, { recursive: true });
    mkdirSync(fwDir, { recursive: true });
    mkdirSync(join(tree, 'proc/driver/nvidia'), { recursive: true });
    writeFileSync(join(tree, 'proc/modules'), 'nvidia 1 0 - Live 0x0 (POE)\n');
    writeFileSync(join(modDir, 'nvidia.ko'), 'module bytes');
    writeFileSync(join(fwDir, 'gsp_ga10x.bin'), 'firmware bytes');
    writeFileSync(join(tree, 'proc/driver/nvidia/version'),
      'NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.90.07  Fri May 31 09:35:42 UTC 2024\n');
    const m = (await collector({ driver: { root: tree, kernelRelease: '6.1.0-test' } }).collect()).measurement;
    const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
    expect(m.moduleDigests).toEqual([
      { name: 'nvidia', path: '/lib/modules/6.1.0-test/kernel/drivers/video/nvidia.ko', sha256: sha('module bytes') },
    ]);
    expect(m.firmwareDigests).toEqual([
      { path: '/lib/firmware/nvidia/550.90.07/gsp_ga10x.bin', sha256: sha('firmware bytes') },
    ]);
    expect(m.procDriverVersion).toBe('NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.90.07  Fri May 31 09:35:42 UTC 2024');
  });
});
