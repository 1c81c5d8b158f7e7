/**
 * Appraisal of a GPU's measurement blocks against NVIDIA's reference values: the driver RIM
 * and the VBIOS RIM each mark some indices active and list the values allowed there; every
 * active index must be present in the report with one of its allowed values. Pure and
 * deterministic (same input, same reasons in the same order), and it checks no signature:
 * it takes a report and RIMs that verify.ts and rim-signature.ts have already verified, or
 * parsed data in tests.
 */
import type { MeasurementBlock } from './spdm.js';
import type { Rim, RimMeasurement } from './rim.js';
import type { Reason } from '../../base/reason.js';

/*
 * Reason codes made here (stable): GPU_RIM_MISSING, GPU_RIM_VERSION_MISMATCH,
 * GPU_RIM_INDEX_CONFLICT, GPU_MEASUREMENT_MISSING, GPU_MEASUREMENT_MISMATCH.
 */

export interface ReportMeasurements {
  blocks: readonly MeasurementBlock[];
  driverVersion?: string | undefined;
  vbiosVersion?: string | undefined;
}

export interface RimPair {
  driver?: Rim | undefined;
  vbios?: Rim | undefined;
}

type Kind = 'driver' | 'VBIOS';

function where(m: RimMeasurement): string {
  return `measurement index ${m.index} (SPDM block ${m.spdmIndex})`;
}

function versionReason(kind: Kind, rim: Rim, reported: string | undefined): Reason | undefined {
  if (reported === undefined) {
    return { code: 'GPU_RIM_VERSION_MISMATCH', message: `the report states no ${kind} version; the ${kind} RIM is for ${rim.colloquialVersion}` };
  }
  // VBIOS versions are hex: the report prints them in lowercase, RIMs in uppercase.
  if (reported.toLowerCase() === rim.colloquialVersion.toLowerCase()) return undefined;
  return { code: 'GPU_RIM_VERSION_MISMATCH', message: `the ${kind} RIM is for version ${rim.colloquialVersion}, the report states ${reported}` };
}

function measurementReason(kind: Kind, m: RimMeasurement, block: MeasurementBlock | undefined): Reason | undefined {
  if (!block) {
    return { code: 'GPU_MEASUREMENT_MISSING', index: m.index, message: `${where(m)} is active in the ${kind} RIM but absent from the report` };
  }
  if (block.valueHex.length !== m.size * 2) {
    return {
      code: 'GPU_MEASUREMENT_MISMATCH', index: m.index,
      message: `${where(m)}: the report holds ${block.valueHex.length / 2} bytes, the ${kind} RIM expects ${m.size}`,
    };
  }
  if (m.allowedHex.includes(block.valueHex.toLowerCase())) return undefined;
  const allowed = m.allowedHex.length === 1 ? m.allowedHex[0] ?? '' : `one of ${m.allowedHex.join(', ')}`;
  return {
    code: 'GPU_MEASUREMENT_MISMATCH', index: m.index,
    message: `${where(m)}: the report holds ${block.valueHex}, the ${kind} RIM allows ${allowed}`,
  };
}

/**
 * Reasons the report does not match the RIMs given; empty when it does. Checks the RIM
 * versions against the versions the report states, that no index is active in both RIMs,
 * and every active index. Indices active in neither RIM are not appraised, as NVIDIA's own
 * verifier does not appraise them. A caller that requires both RIMs checks it has them.
 */
export function compareMeasurements(report: ReportMeasurements, rims: RimPair): Reason[] {
  const reasons: Reason[] = [];
  const given: [Kind, Rim, string | undefined][] = [];
  if (rims.driver) given.push(['driver', rims.driver, report.driverVersion]);
  if (rims.vbios) given.push(['VBIOS', rims.vbios, report.vbiosVersion]);
  if (given.length === 0) return [{ code: 'GPU_RIM_MISSING', message: 'no RIM was given to compare the measurements with' }];

  for (const [kind, rim, reported] of given) {
    const r = versionReason(kind, rim, reported);
    if (r) reasons.push(r);
  }
  const blocks = new Map(report.blocks.map((b) => [b.index, b]));
  const active = new Map<number, [Kind, RimMeasurement]>();
  for (const [kind, rim] of given) {
    for (const m of rim.measurements) {
      if (!m.active) continue;
      const other = active.get(m.index);
      if (other) {
        reasons.push({ code: 'GPU_RIM_INDEX_CONFLICT', index: m.index, message: `${where(m)} is active in both the ${other[0]} and the ${kind} RIM` });
        continue;
      }
      active.set(m.index, [kind, m]);
    }
  }
  for (const index of [...active.keys()].sort((a, b) => a - b)) {
    const [kind, m] = active.get(index) ?? [];
    if (!kind || !m) continue;
    const r = measurementReason(kind, m, blocks.get(m.spdmIndex));
    if (r) reasons.push(r);
  }
  return reasons;
}
