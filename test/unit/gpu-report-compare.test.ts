// compareMeasurements on parsed data (no signature involved), and compareWithRims on the
// real signed RIMs. No recorded report has its own RIM in the fixture set (the RIMs are for
// VBIOS 96.00.5E/96.00.74 and driver 545.00; the reports are VBIOS 96.00.9f/a5/97.00.e4 and
// drivers 550.90.07/590.12/590.48.01), so the passing case is built from a real RIM whose
// reference values are set to the report's own values.
import { describe, it, expect } from 'vitest';
import { compareMeasurements } from '../../daemon/verify/gpu-report/compare.js';
import { parseRimXml, type Rim } from '../../daemon/verify/gpu-report/rim.js';
import type { MeasurementBlock } from '../../daemon/verify/gpu-report/spdm.js';
import { compareWithRims, verifyGpuAttestation, type VerifiedGpuReport } from '../../daemon/verify/gpu-report/verify.js';
import { gpuSamples, h100, rimFixture, RIM_AT, type GpuSample } from './gpu-report-helpers.js';

const verified = (s: GpuSample): VerifiedGpuReport => verifyGpuAttestation({ report: s.report, certChainPem: s.chainPem, expectedNonce: s.nonce, at: RIM_AT });
const report = verified(h100());
const PROD = rimFixture('nvtrust_1010_0200_882_96005E0001_PROD.swidtag.xml');
const DRIVER = rimFixture('nvtrust_Driver_RIM_test_no_gpu.swidtag.xml');

/** The PROD VBIOS RIM rewritten to expect exactly what the H100 report holds. */
function matchingVbiosRim(blocks: readonly MeasurementBlock[]): Rim {
  const rim = parseRimXml(PROD);
  return {
    ...rim,
    colloquialVersion: '96.00.9F.00.01',
    measurements: rim.measurements.map((m) => {
      const value = blocks.find((b) => b.index === m.spdmIndex)?.valueHex ?? '';
      return { ...m, allowedHex: m.allowedHex.length > 1 ? [...m.allowedHex.slice(1), value] : [value] };
    }),
  };
}

function withBlock(blocks: readonly MeasurementBlock[], index: number, valueHex: string): MeasurementBlock[] {
  return blocks.map((b) => (b.index === index ? { ...b, valueHex } : b));
}

describe('compareMeasurements (parsed data)', () => {
  const rim = matchingVbiosRim(report.blocks);

  it('passes when every active index holds an allowed value (the last of several alternatives too)', () => {
    expect(compareMeasurements(report, { vbios: rim })).toEqual([]);
    expect(rim.measurements[12]?.allowedHex).toHaveLength(4);
  });

  it('an altered block: one mismatch naming the RIM index and the SPDM block', () => {
    const altered = withBlock(report.blocks, 5, 'ab'.repeat(48));
    const reasons = compareMeasurements({ ...report, blocks: altered }, { vbios: rim });
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatchObject({ code: 'GPU_MEASUREMENT_MISMATCH', index: 4 });
    expect(reasons[0]?.message).toContain('measurement index 4 (SPDM block 5)');
    expect(reasons[0]?.message).toContain('ab'.repeat(48));
  });

  it('an altered block at an inactive index is not appraised', () => {
    expect(rim.measurements[7]?.active).toBe(false);
    expect(compareMeasurements({ ...report, blocks: withBlock(report.blocks, 8, 'cd'.repeat(48)) }, { vbios: rim })).toEqual([]);
  });

  it('a missing block, a short value, a version mismatch', () => {
    const missing = compareMeasurements({ ...report, blocks: report.blocks.filter((b) => b.index !== 2) }, { vbios: rim });
    expect(missing).toEqual([expect.objectContaining({ code: 'GPU_MEASUREMENT_MISSING', index: 1 })]);
    const short = compareMeasurements({ ...report, blocks: withBlock(report.blocks, 3, 'ab'.repeat(32)) }, { vbios: rim });
    expect(short).toEqual([expect.objectContaining({ code: 'GPU_MEASUREMENT_MISMATCH', index: 2 })]);
    expect(short[0]?.message).toMatch(/holds 32 bytes.*expects 48/);
    const version = compareMeasurements({ ...report, vbiosVersion: '96.00.a5.00.01' }, { vbios: rim });
    expect(version).toEqual([expect.objectContaining({ code: 'GPU_RIM_VERSION_MISMATCH' })]);
  });

  it('no RIM, and an index active in both RIMs', () => {
    expect(compareMeasurements(report, {})).toEqual([expect.objectContaining({ code: 'GPU_RIM_MISSING' })]);
    const driver = { ...rim, colloquialVersion: '550.90.07', measurements: rim.measurements.map((m) => ({ ...m, active: m.index === 3 })) };
    const reasons = compareMeasurements(report, { driver, vbios: rim });
    expect(reasons).toEqual([expect.objectContaining({ code: 'GPU_RIM_INDEX_CONFLICT', index: 3 })]);
  });

  it('is deterministic: reasons sorted by index whatever the block order', () => {
    const altered = withBlock(withBlock(report.blocks, 10, '00'.repeat(48)), 2, '00'.repeat(48));
    const a = compareMeasurements({ ...report, blocks: altered }, { vbios: rim });
    const b = compareMeasurements({ ...report, blocks: [...altered].reverse() }, { vbios: rim });
    expect(a).toEqual(b);
    expect(a.map((r) => r.index)).toEqual([1, 9]);
  });
});

describe('compareWithRims (real signed RIMs)', () => {
  it('H100 report against the PROD 96.00.5E VBIOS RIM: a different VBIOS, so versions and indices 1, 2, 9, 11 differ', () => {
    const reasons = compareWithRims(report, { vbiosRim: PROD, at: RIM_AT });
    expect(reasons.map((r) => `${r.code}:${r.index ?? ''}`)).toEqual([
      'GPU_RIM_VERSION_MISMATCH:', 'GPU_MEASUREMENT_MISMATCH:1', 'GPU_MEASUREMENT_MISMATCH:2', 'GPU_MEASUREMENT_MISMATCH:9', 'GPU_MEASUREMENT_MISMATCH:11',
    ]);
    expect(reasons[0]?.message).toBe('the VBIOS RIM is for version 96.00.5E.00.01, the report states 96.00.9f.00.01');
    expect(reasons).toEqual(compareMeasurements(report, { vbios: parseRimXml(PROD) }));
  });

  it('driver and VBIOS RIM together: disjoint active indices, every RIM verified and handed to onRim', () => {
    const seen: string[] = [];
    const reasons = compareWithRims(report, { driverRim: DRIVER, vbiosRim: PROD, at: RIM_AT, onRim: (kind, r) => seen.push(`${kind}:${r.rim.colloquialVersion}`) });
    expect(seen).toEqual(['driver:545.00', 'vbios:96.00.5E.00.01']);
    expect(reasons.some((r) => r.code === 'GPU_RIM_INDEX_CONFLICT')).toBe(false);
    expect(reasons.filter((r) => r.code === 'GPU_RIM_VERSION_MISMATCH')).toHaveLength(2);
    expect(reasons.find((r) => r.index === 7)?.message).toContain('driver RIM');
  });

  it('the 8x H100 PPCIe GPUs against the g520 VBIOS RIM of their project (96.00.74, reports 96.00.a5)', () => {
    const g520 = rimFixture('nvtrust_g520_0200_885_9600740001_PROD.swidtag.xml');
    for (const s of gpuSamples().slice(1, 9)) {
      const reasons = compareWithRims(verified(s), { vbiosRim: g520, at: RIM_AT });
      expect(reasons.map((r) => r.index ?? -1)).toEqual([-1, 1, 2, 3, 9, 11, 12]);
    }
  });

  it('a RIM that does not verify throws; a stale one too', () => {
    const broken = Buffer.from(PROD.toString('utf8').replace('index="7" active="False"', 'index="7" active="True"'));
    expect(() => compareWithRims(report, { vbiosRim: broken, at: RIM_AT })).toThrow(expect.objectContaining({ code: 'RIM_INVALID' }));
    expect(() => compareWithRims(report, { vbiosRim: PROD })).toThrow(expect.objectContaining({ code: 'COLLATERAL_STALE' }));
  });
});
