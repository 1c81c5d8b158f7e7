/**
 * The nvidia-smi XML parser on real captures (../shared/fixtures/nvidia/nvidia-smi/, sources in
 * SOURCES.md: telegraf's test data) and on hostile input.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestdError } from '../../daemon/base/errors.js';
import { encodeGpuMeasurement } from '../../daemon/verify/gpu/measurement.js';
import { MAX_NVIDIA_SMI_XML_BYTES, parseNvidiaSmiXml } from '../../daemon/verify/gpu/nvidia-smi-xml.js';

const FIXTURES = new URL('../../../shared/fixtures/nvidia/nvidia-smi/', import.meta.url);
const fixture = (name: string): Buffer => readFileSync(new URL(name, FIXTURES));

function expectSmiFailure(input: string | Uint8Array, fragment?: string): void {
  let caught: unknown;
  try {
    parseNvidiaSmiXml(input);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(AttestdError);
  expect((caught as AttestdError).code).toBe('NVIDIA_SMI_FAILED');
  if (fragment !== undefined) expect((caught as AttestdError).message).toContain(fragment);
}

const minimal = (gpu: string, extra = ''): string =>
  `<?xml version="1.0" ?>${extra}<nvidia_smi_log><driver_version>550.90.07</driver_version>` +
  `<cuda_version>12.4</cuda_version>${gpu}</nvidia_smi_log>`;

describe('nvidia-smi -q -x fixtures', () => {
  it('A100-SXM4 with MIG (DTD v12)', () => {
    const m = parseNvidiaSmiXml(fixture('telegraf_a100-sxm4-v12.xml'));
    expect(m).toMatchObject({
      source: 'nvidia-smi', driverVersion: '535.54.03', cudaDriverVersion: '12.2', nvmlVersion: '',
      ccState: { environment: 'n/a', ccFeature: 'n/a', devToolsMode: 'n/a', gpusReady: 'n/a' },
      moduleDigests: [], firmwareDigests: [],
    });
    // The capture says attached_gpus=4 but holds one <gpu>: the elements are what counts.
    expect(m.gpus).toEqual([{
      index: 0, name: 'NVIDIA A100-SXM4-80GB', uuid: 'GPU-513536b6-7d19-9063-b049-1e69664bb298',
      serial: '1650522003820', pciBusId: '00000000:01:00.0', vbiosVersion: '92.00.36.00.02',
      inforomImageVersion: 'G506.0212.00.01', eccModeCurrent: 'enabled', migModeCurrent: 'enabled',
      persistenceMode: 'disabled', ccMode: 'n/a',
    }]);
  });

  it('GeForce RTX 3080 (DTD v13, tab-indented, N/A fields)', () => {
    const m = parseNvidiaSmiXml(fixture('telegraf_rtx-3080-v13.xml'));
    expect(m.driverVersion).toBe('595.58.03');
    expect(m.cudaDriverVersion).toBe('13.2');
    expect(m.gpus).toEqual([{
      index: 0, name: 'NVIDIA GeForce RTX 3080', uuid: 'GPU-19d6d965-2acc-f646-00f8-4c76979aabb4',
      serial: 'REDACTED', pciBusId: '00000000:0C:00.0', vbiosVersion: '94.02.71.40.72',
      inforomImageVersion: 'G001.0000.03.03', eccModeCurrent: 'n/a', migModeCurrent: 'n/a',
      persistenceMode: 'disabled', ccMode: 'n/a',
    }]);
  });

  it('Tesla T4 (DTD v11), keeping a serial of zeros as text', () => {
    const m = parseNvidiaSmiXml(fixture('telegraf_tesla-t4.xml'));
    expect(m.driverVersion).toBe('515.105.01');
    expect(m.cudaDriverVersion).toBe('11.7');
    expect(m.gpus).toEqual([{
      index: 0, name: 'Tesla T4', uuid: 'GPU-d37e67a5-91dd-3774-a5cb-99096249601a', serial: '0000000000000',
      pciBusId: '00000000:00:1E.0', vbiosVersion: '90.04.84.00.06', inforomImageVersion: 'G183.0200.00.02',
      eccModeCurrent: 'enabled', migModeCurrent: 'n/a', persistenceMode: 'disabled', ccMode: 'n/a',
    }]);
  });

  it('gives every fixture a canonical encoding, from text or bytes alike', () => {
    for (const name of ['telegraf_a100-sxm4-v12.xml', 'telegraf_rtx-3080-v13.xml', 'telegraf_tesla-t4.xml']) {
      const bytes = fixture(name);
      const m = parseNvidiaSmiXml(bytes, 'libnvidia-ml.so.1 not found');
      expect(m.noDriverReason).toBe('libnvidia-ml.so.1 not found');
      expect(encodeGpuMeasurement(m)).toEqual(encodeGpuMeasurement(parseNvidiaSmiXml(bytes.toString('utf8'), m.noDriverReason)));
    }
  });
});

describe('nvidia-smi XML on hostile input', () => {
  const gpu = '<gpu id="00000000:01:00.0"><product_name>X</product_name><uuid>GPU-1</uuid></gpu>';

  it('reads a minimal document, decoding only the predefined escapes', () => {
    const m = parseNvidiaSmiXml(minimal('<gpu><product_name>A &amp; B &lt;C&gt;</product_name><uuid>GPU-1</uuid></gpu>'));
    expect(m.gpus[0]).toMatchObject({ name: 'A & B <C>', uuid: 'GPU-1', pciBusId: '', eccModeCurrent: 'n/a' });
    expect(parseNvidiaSmiXml(minimal(gpu)).gpus[0]!.pciBusId).toBe('00000000:01:00.0');
    expect(parseNvidiaSmiXml(minimal('')).gpus).toEqual([]);
  });

  it('never expands entities: a billion-laughs document stays small, external ones are refused', () => {
    const bomb = '<!DOCTYPE nvidia_smi_log [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">' +
      '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>';
    const m = parseNvidiaSmiXml(minimal('<gpu><product_name>&d;</product_name><uuid>GPU-1</uuid></gpu>', bomb));
    expect(m.gpus[0]!.name).toBe('&d;');
    const external = '<!DOCTYPE nvidia_smi_log [<!ENTITY x SYSTEM "file:///etc/passwd">]>';
    // An external entity is refused outright; nothing is fetched.
    expectSmiFailure(minimal('<gpu><product_name>&x;</product_name><uuid>GPU-1</uuid></gpu>', external), 'External');
  });

  it('refuses oversized, malformed and misshapen documents', () => {
    expectSmiFailure(' '.repeat(MAX_NVIDIA_SMI_XML_BYTES + 1), 'exceeds');
    expectSmiFailure(Buffer.alloc(MAX_NVIDIA_SMI_XML_BYTES + 1), 'exceeds');
    expectSmiFailure(Buffer.from([0x3c, 0x61, 0xff, 0x3e]), 'UTF-8');
    expectSmiFailure('NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.');
    expectSmiFailure('<nvidia_smi_log><gpu></nvidia_smi_log>', 'well-formed');
    expectSmiFailure('<other/>', 'root');
    expectSmiFailure(minimal('<gpu><product_name>X</product_name></gpu>'), 'no uuid');
    expectSmiFailure(minimal('<gpu>text</gpu>'), 'not an element');
    expectSmiFailure(minimal('<gpu><uuid>GPU-1</uuid><persistence_mode>Sometimes</persistence_mode></gpu>'), 'persistence_mode');
    expectSmiFailure('<nvidia_smi_log><gpu><uuid>GPU-1</uuid></gpu></nvidia_smi_log>', 'driver_version');
    expectSmiFailure(minimal('<gpu><uuid>GPU-1</uuid><__proto__><polluted>1</polluted></__proto__></gpu>'));
    expectSmiFailure(minimal(`<gpu><uuid>${'x'.repeat(5000)}</uuid></gpu>`), 'longer');
    expectSmiFailure(minimal(`${'<a>'.repeat(200)}${'</a>'.repeat(200)}`));
    expectSmiFailure(minimal(Array.from({ length: 65 }, (_, i) => `<gpu><uuid>GPU-${i}</uuid></gpu>`).join('')), 'more than 64');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('throws only AttestdError, whatever the input (property)', () => {
    const base = fixture('telegraf_tesla-t4.xml').toString('utf8');
    const tags = ['nvidia_smi_log', 'gpu', 'uuid', 'driver_version', 'ecc_mode', 'current_ecc', 'pci', '__proto__', 'constructor'];
    const xmlish = fc.array(fc.oneof(
      fc.constantFrom(...tags).map((t) => `<${t}>`),
      fc.constantFrom(...tags).map((t) => `</${t}>`),
      fc.constantFrom('Enabled', 'N/A', '&amp;', '&x;', '<!DOCTYPE a [<!ENTITY x "y">]>', '<![CDATA[z]]>', '<?pi?>', 'id="1"'),
      fc.string({ maxLength: 8 }),
    ), { maxLength: 40 }).map((parts) => parts.join(''));
    const mutated = fc.tuple(fc.nat(base.length), fc.nat(64), fc.string({ maxLength: 4 }))
      .map(([at, cut, ins]) => base.slice(0, at) + ins + base.slice(at + cut));
    fc.assert(fc.property(fc.oneof(xmlish, mutated, fc.string(), fc.uint8Array({ maxLength: 64 })), (input) => {
      try {
        const m = parseNvidiaSmiXml(input);
        // What parses is a valid measurement.
        encodeGpuMeasurement(m);
      } catch (err) {
        if (!(err instanceof AttestdError)) throw err;
        expect(err.code).toBe('NVIDIA_SMI_FAILED');
      }
    }), { numRuns: 1000 });
  });
});
