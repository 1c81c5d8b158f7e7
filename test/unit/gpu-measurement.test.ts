import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { crossCheckGpuMeasurements } from '../../daemon/verify/gpu/cross-check.js';
import { decodeGpuMeasurement } from '../../daemon/verify/gpu/measurement-decode.js';
import {
  encodeGpuMeasurement, type GpuMeasurement, gpuMeasurementSha256, noGpuMeasurement,
} from '../../daemon/verify/gpu/measurement.js';
import { driverVersionFromProcText } from '../../daemon/verify/gpu/proc-driver-version.js';

const HEX64 = 'ab'.repeat(32);

function sample(): GpuMeasurement {
  return {
    source: 'nvml',
    driverVersion: '550.90.07',
    nvmlVersion: '12.550.90.07',
    cudaDriverVersion: '12.4',
    procDriverVersion: 'NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.90.07',
    gpus: [
      {
        index: 0, name: 'NVIDIA H100 80GB HBM3', uuid: 'GPU-a', serial: '1', pciBusId: '00000000:18:00.0',
        vbiosVersion: '96.00.9F.00.01', inforomImageVersion: 'G520.0200.00.05', eccModeCurrent: 'enabled',
        migModeCurrent: 'disabled', persistenceMode: 'enabled', ccMode: 'on',
      },
      {
        index: 1, name: 'NVIDIA H100 80GB HBM3', uuid: 'GPU-b', serial: '2', pciBusId: '00000000:2A:00.0',
        vbiosVersion: '96.00.9F.00.01', inforomImageVersion: 'G520.0200.00.05', eccModeCurrent: 'enabled',
        migModeCurrent: 'enabled', persistenceMode: 'enabled', ccMode: 'on',
      },
    ],
    ccState: { environment: 'prod', ccFeature: 'enabled', devToolsMode: 'off', gpusReady: 'ready' },
    moduleDigests: [
      { name: 'nvidia', path: '/lib/modules/6.1/nvidia.ko', sha256: HEX64 },
      { name: 'nvidia_uvm', path: '', sha256: '' },
    ],
    firmwareDigests: [{ path: '/lib/firmware/nvidia/550.90.07/gsp_ga10x.bin', sha256: 'cd'.repeat(32) }],
  };
}

function str(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** The documented layout, written out again without sorting or checks. */
function rawEncode(m: GpuMeasurement): Buffer {
  const parts = [Buffer.from('attestd/gpu-measurement/v1'), str(m.source)];
  parts.push(m.noDriverReason === undefined ? Buffer.from([0]) : Buffer.concat([Buffer.from([1]), str(m.noDriverReason)]));
  for (const s of [m.driverVersion, m.nvmlVersion, m.cudaDriverVersion, m.procDriverVersion]) parts.push(str(s));
  parts.push(u32(m.gpus.length));
  for (const g of m.gpus) {
    parts.push(u32(g.index));
    for (const s of [g.name, g.uuid, g.serial, g.pciBusId, g.vbiosVersion, g.inforomImageVersion,
      g.eccModeCurrent, g.migModeCurrent, g.persistenceMode, g.ccMode]) parts.push(str(s));
  }
  const c = m.ccState;
  for (const s of [c.environment, c.ccFeature, c.devToolsMode, c.gpusReady]) parts.push(str(s));
  parts.push(u32(m.moduleDigests.length));
  for (const d of m.moduleDigests) parts.push(str(d.name), str(d.path), str(d.sha256));
  parts.push(u32(m.firmwareDigests.length));
  for (const d of m.firmwareDigests) parts.push(str(d.path), str(d.sha256));
  return Buffer.concat(parts);
}

function expectInvalid(f: () => unknown): void {
  expect(f).toThrow(AttestdError);
  try {
    f();
  } catch (err) {
    expect((err as AttestdError).code).toBe('INVALID_ARGUMENT');
  }
}

describe('GPU measurement encoding', () => {
  it('matches the documented layout byte for byte', () => {
    expect(encodeGpuMeasurement(sample())).toEqual(rawEncode(sample()));
    const expected = Buffer.concat([
      Buffer.from('attestd/gpu-measurement/v1'), str('none'), Buffer.from([1]), str('no driver'),
      str(''), str(''), str(''), str(''), u32(0), str('n/a'), str('n/a'), str('n/a'), str('n/a'), u32(0), u32(0),
    ]);
    expect(encodeGpuMeasurement(noGpuMeasurement('no driver'))).toEqual(expected);
  });

  it('is stable: a pinned digest for the sample', () => {
    // Changing this value changes every recorded epoch binding: bump the format version instead.
    expect(gpuMeasurementSha256(sample()).toString('hex'))
      .toBe(createHash('sha256').update(encodeGpuMeasurement(sample())).digest('hex'));
    expect(gpuMeasurementSha256(sample()).toString('hex')).toBe('36c520d4517653932974354bcbf53c43e1f8ef5f69e6e94c492d4adc9f133747');
  });

  it('does not depend on the order lists were collected in', () => {
    const m = sample();
    m.gpus.reverse();
    m.moduleDigests.reverse();
    expect(encodeGpuMeasurement(m)).toEqual(encodeGpuMeasurement(sample()));
  });

  it('changes the digest when any single field changes', () => {
    const mutations: ((m: GpuMeasurement) => void)[] = [
      (m) => { m.source = 'nvidia-smi'; m.noDriverReason = 'x'; },
      (m) => { m.driverVersion = '550.90.08'; },
      (m) => { m.nvmlVersion = '12.550.90.08'; },
      (m) => { m.cudaDriverVersion = '12.5'; },
      (m) => { m.procDriverVersion += ' '; },
      (m) => { m.gpus[1]!.index = 2; },
      (m) => { m.gpus.pop(); },
      (m) => { m.gpus[0]!.name = 'NVIDIA H200'; },
      (m) => { m.gpus[0]!.uuid = 'GPU-c'; },
      (m) => { m.gpus[0]!.serial = '3'; },
      (m) => { m.gpus[0]!.pciBusId = '00000000:19:00.0'; },
      (m) => { m.gpus[0]!.vbiosVersion = '96.00.9F.00.02'; },
      (m) => { m.gpus[0]!.inforomImageVersion = 'G520.0200.00.06'; },
      (m) => { m.gpus[0]!.eccModeCurrent = 'disabled'; },
      (m) => { m.gpus[0]!.migModeCurrent = 'enabled'; },
      (m) => { m.gpus[0]!.persistenceMode = 'disabled'; },
      (m) => { m.gpus[0]!.ccMode = 'devtools'; },
      (m) => { m.ccState.environment = 'sim'; },
      (m) => { m.ccState.ccFeature = 'disabled'; },
      (m) => { m.ccState.devToolsMode = 'on'; },
      (m) => { m.ccState.gpusReady = 'not-ready'; },
      (m) => { m.moduleDigests[0]!.sha256 = 'ac'.repeat(32); },
      (m) => { m.moduleDigests[0]!.path = '/lib/modules/6.2/nvidia.ko'; },
      (m) => { m.moduleDigests[1]!.name = 'nvidia_drm'; },
      (m) => { m.firmwareDigests[0]!.sha256 = 'ce'.repeat(32); },
      (m) => { m.firmwareDigests = []; },
      // Moving a string's boundary must not leave the bytes equal.
      (m) => { m.driverVersion = '550.90.0'; m.nvmlVersion = '712.550.90.07'; },
    ];
    const seen = new Set([gpuMeasurementSha256(sample()).toString('hex')]);
    for (const mutate of mutations) {
      const m = sample();
      mutate(m);
      seen.add(gpuMeasurementSha256(m).toString('hex'));
    }
    expect(seen.size).toBe(mutations.length + 1);
  });

  it('refuses measurements outside the documented shape', () => {
    const bad: ((m: GpuMeasurement) => void)[] = [
      (m) => { m.noDriverReason = 'nvml with a reason'; },
      (m) => { m.source = 'none'; },
      (m) => { m.gpus[1]!.index = 0; },
      (m) => { m.gpus[0]!.index = -1; },
      (m) => { (m.gpus[0] as { eccModeCurrent: string }).eccModeCurrent = 'on'; },
      (m) => { (m.gpus[0] as { ccMode: string }).ccMode = 'unknown(3)'; },
      (m) => { m.moduleDigests[0]!.sha256 = 'AB'.repeat(32); },
      (m) => { m.moduleDigests[1]!.sha256 = HEX64; },
      (m) => { m.moduleDigests.push({ ...m.moduleDigests[0]! }); },
      (m) => { m.firmwareDigests[0]!.path = ''; },
      (m) => { m.gpus[0]!.name = 'bad \uD800 surrogate'; },
      (m) => { m.procDriverVersion = 'x'.repeat(4097); },
      (m) => { m.gpus = Array.from({ length: 65 }, (_, i) => ({ ...sample().gpus[0]!, index: i })); },
      (m) => { (m as unknown as { gpus: unknown }).gpus = 'none'; },
    ];
    for (const mutate of bad) {
      const m = sample();
      mutate(m);
      expectInvalid(() => encodeGpuMeasurement(m));
    }
    const unknown = sample();
    unknown.gpus[0]!.eccModeCurrent = 'unknown(7)';
    expect(decodeGpuMeasurement(encodeGpuMeasurement(unknown)).gpus[0]!.eccModeCurrent).toBe('unknown(7)');
  });
});

describe('GPU measurement decoding', () => {
  it('round-trips', () => {
    expect(decodeGpuMeasurement(encodeGpuMeasurement(sample()))).toEqual(sample());
    const none = noGpuMeasurement('libnvidia-ml.so.1 not found');
    expect(decodeGpuMeasurement(encodeGpuMeasurement(none))).toEqual(none);
  });

  it('rejects tampered encodings', () => {
    const good = encodeGpuMeasurement(sample());
    expectInvalid(() => decodeGpuMeasurement(good.subarray(0, good.length - 1)));
    expectInvalid(() => decodeGpuMeasurement(Buffer.concat([good, Buffer.from([0])])));
    const magic = Buffer.from(good);
    magic[0] = 0x41;
    expectInvalid(() => decodeGpuMeasurement(magic));
    // Non-canonical orders, written by the independent encoder below.
    const swapped = sample();
    swapped.gpus.reverse();
    expectInvalid(() => decodeGpuMeasurement(rawEncode(swapped)));
    const dupGpu = sample();
    dupGpu.gpus[1]!.index = 0;
    expectInvalid(() => decodeGpuMeasurement(rawEncode(dupGpu)));
    const modules = sample();
    modules.moduleDigests.reverse();
    expectInvalid(() => decodeGpuMeasurement(rawEncode(modules)));
    const encBoth = encodeGpuMeasurement(sample());
    const enumBad = Buffer.from(encBoth);
    enumBad.write('enabxed', enumBad.indexOf(Buffer.from('enabled')));
    expectInvalid(() => decodeGpuMeasurement(enumBad));
    const utf8Bad = Buffer.from(encBoth);
    utf8Bad[utf8Bad.indexOf(Buffer.from('NVIDIA H100'))] = 0xff;
    expectInvalid(() => decodeGpuMeasurement(utf8Bad));
    const flagBad = Buffer.from(encodeGpuMeasurement(noGpuMeasurement('x')));
    flagBad[26 + 8] = 2;
    expectInvalid(() => decodeGpuMeasurement(flagBad));
  });

  it('refuses a huge count before allocating for it', () => {
    const head = Buffer.concat([Buffer.from('attestd/gpu-measurement/v1'), str('none'), Buffer.from([1]), str('r'),
      str(''), str(''), str(''), str(''), u32(0xffff_ffff)]);
    expectInvalid(() => decodeGpuMeasurement(head));
    const long = Buffer.concat([Buffer.from('attestd/gpu-measurement/v1'), u32(0x7fff_ffff)]);
    expectInvalid(() => decodeGpuMeasurement(long));
  });

  it('throws only AttestdError on arbitrary bytes (property)', () => {
    const good = encodeGpuMeasurement(sample());
    fc.assert(fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 512 }),
        // Mutations of a valid encoding reach much further into the decoder.
        fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 }), fc.nat(good.length))
          .map(([at, byte, cut]) => {
            const b = Buffer.from(good);
            b[at] = byte;
            return b.subarray(0, Math.max(cut, at + 1));
          }),
      ),
      (bytes) => {
        try {
          const m = decodeGpuMeasurement(bytes);
          // Whatever decodes is canonical: it re-encodes to the same bytes.
          expect(encodeGpuMeasurement(m)).toEqual(Buffer.from(bytes));
        } catch (err) {
          if (!(err instanceof AttestdError)) throw err;
        }
      },
    ), { numRuns: 2000 });
  });

  it('round-trips arbitrary valid measurements (property)', () => {
    const text = fc.string({ maxLength: 20, unit: 'grapheme' });
    const toggle = fc.constantFrom('enabled', 'disabled', 'n/a', 'unknown(5)') as fc.Arbitrary<'enabled'>;
    const gpu = fc.record({
      index: fc.nat(1000), name: text, uuid: text, serial: text, pciBusId: text, vbiosVersion: text,
      inforomImageVersion: text, eccModeCurrent: toggle, migModeCurrent: toggle, persistenceMode: toggle,
      ccMode: fc.constantFrom('on', 'off', 'devtools', 'n/a') as fc.Arbitrary<'on'>,
    });
    const hex = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
    const arb = fc.record({
      source: fc.constantFrom('nvml', 'none') as fc.Arbitrary<'nvml' | 'none'>,
      driverVersion: text, nvmlVersion: text, cudaDriverVersion: text, procDriverVersion: text,
      gpus: fc.uniqueArray(gpu, { maxLength: 4, selector: (g) => g.index }),
      ccState: fc.record({
        environment: fc.constantFrom('unavailable', 'sim', 'prod', 'n/a') as fc.Arbitrary<'prod'>,
        ccFeature: toggle,
        devToolsMode: fc.constantFrom('on', 'off', 'n/a') as fc.Arbitrary<'on'>,
        gpusReady: fc.constantFrom('ready', 'not-ready', 'n/a') as fc.Arbitrary<'ready'>,
      }),
      moduleDigests: fc.uniqueArray(fc.record({ name: text.filter((s) => s !== ''), path: text.filter((s) => s !== ''), sha256: hex }),
        { maxLength: 3, selector: (d) => d.name }),
      firmwareDigests: fc.uniqueArray(fc.record({ path: text.filter((s) => s !== ''), sha256: hex }),
        { maxLength: 3, selector: (d) => d.path }),
    }).map((m): GpuMeasurement => (m.source === 'none' ? { ...m, noDriverReason: 'r' } : m));
    fc.assert(fc.property(arb, (m) => {
      const bytes = encodeGpuMeasurement(m);
      const back = decodeGpuMeasurement(bytes);
      expect(encodeGpuMeasurement(back)).toEqual(bytes);
      expect(back.gpus.map((g) => g.index)).toEqual([...m.gpus.map((g) => g.index)].sort((x, y) => x - y));
    }), { numRuns: 150 });
  });
});

describe('GPU cross-check and /proc version', () => {
  it('reports only real differences, matching GPUs by UUID', () => {
    const nvml = sample();
    const smi: GpuMeasurement = { ...sample(), source: 'nvidia-smi', noDriverReason: 'x', nvmlVersion: '' };
    smi.gpus.reverse();
    smi.gpus.forEach((g) => { g.ccMode = 'n/a'; g.pciBusId = g.pciBusId.toLowerCase(); });
    smi.ccState = { environment: 'n/a', ccFeature: 'n/a', devToolsMode: 'n/a', gpusReady: 'n/a' };
    expect(crossCheckGpuMeasurements(nvml, smi)).toEqual([]);
    smi.gpus[0]!.serial = 'other';
    smi.gpus[1]!.uuid = 'GPU-z';
    smi.cudaDriverVersion = '12.5';
    expect(crossCheckGpuMeasurements(nvml, smi)).toEqual([
      'cudaDriverVersion', 'gpus[GPU-a].missing-in-nvidia-smi', 'gpus[GPU-b].serial', 'gpus[GPU-z].missing-in-nvml',
    ]);
    smi.gpus.pop();
    expect(crossCheckGpuMeasurements(nvml, smi)).toContain('gpus.count');
  });

  it('finds the driver version in both kernel module flavours', () => {
    expect(driverVersionFromProcText(
      'NVRM version: NVIDIA UNIX x86_64 Kernel Module  515.76  Mon Sep 12 19:21:56 UTC 2022\nGCC version:  gcc 11\n',
    )).toBe('515.76');
    expect(driverVersionFromProcText(
      'NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  575.57.08  Release Build  (dvs-builder@U16)  Tue May 20 2025',
    )).toBe('575.57.08');
    expect(driverVersionFromProcText('GCC version: 12.2.0')).toBeUndefined();
    expect(driverVersionFromProcText('')).toBeUndefined();
  });
});
