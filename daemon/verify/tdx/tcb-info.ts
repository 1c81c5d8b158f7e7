/**
 * TDX TCB Info (Intel PCS, tcbInfo version 3, id "TDX"): its fields, and the TCB level that
 * applies to a platform, found from the PCK certificate's SGX TCB components and PCESVN and
 * the quote's TEE_TCB_SVN (Intel TDX DCAP Quote Verification, "TCB level matching").
 */
import { invalid, obj, arr, str, int, hex, date, tcbStatus, type TcbStatus } from './json-fields.js';
import type { SignedJson } from './signed-json.js';

export interface TdxModuleIdentity {
  id: string;
  mrSigner: Buffer;
  attributes: Buffer;
  attributesMask: Buffer;
  tcbLevels: { isvSvn: number; tcbStatus: TcbStatus }[];
}

export interface TdxTcbLevel {
  sgxComponents: number[];
  pceSvn: number;
  tdxComponents: number[];
  tcbDate: string;
  tcbStatus: TcbStatus;
  advisoryIds: string[];
}

export interface TdxTcbInfo {
  version: number;
  issueDate: Date;
  nextUpdate: Date;
  fmspc: Buffer;
  pceId: Buffer;
  tcbEvaluationDataNumber: number;
  tdxModule: { mrSigner: Buffer; attributes: Buffer; attributesMask: Buffer };
  tdxModuleIdentities: TdxModuleIdentity[];
  tcbLevels: TdxTcbLevel[];
}

/** Reads the signed body of a TCB info document; TDX_COLLATERAL_INVALID unless it is TDX v3. */
export function tdxTcbInfo(doc: SignedJson): TdxTcbInfo {
  const t = obj(doc.body, 'tcbInfo');
  if (t.id !== 'TDX') invalid(`tcbInfo id is ${String(t.id)}, not TDX`);
  const version = int(t.version, 'tcbInfo.version');
  if (version !== 3) invalid(`tcbInfo version ${version} is not 3`);
  const m = obj(t.tdxModule, 'tcbInfo.tdxModule');
  return {
    version,
    issueDate: date(t.issueDate, 'tcbInfo.issueDate'),
    nextUpdate: date(t.nextUpdate, 'tcbInfo.nextUpdate'),
    fmspc: hex(t.fmspc, 'tcbInfo.fmspc', 6),
    pceId: hex(t.pceId, 'tcbInfo.pceId', 2),
    tcbEvaluationDataNumber: int(t.tcbEvaluationDataNumber, 'tcbInfo.tcbEvaluationDataNumber'),
    tdxModule: {
      mrSigner: hex(m.mrsigner, 'tdxModule.mrsigner', 48),
      attributes: hex(m.attributes, 'tdxModule.attributes', 8),
      attributesMask: hex(m.attributesMask, 'tdxModule.attributesMask', 8),
    },
    tdxModuleIdentities: (t.tdxModuleIdentities === undefined ? [] : arr(t.tdxModuleIdentities, 'tdxModuleIdentities', 64)).map((v, i) => {
      const id = obj(v, `tdxModuleIdentities[${i}]`);
      return {
        id: str(id.id, 'tdxModuleIdentity.id'),
        mrSigner: hex(id.mrsigner, 'tdxModuleIdentity.mrsigner', 48),
        attributes: hex(id.attributes, 'tdxModuleIdentity.attributes', 8),
        attributesMask: hex(id.attributesMask, 'tdxModuleIdentity.attributesMask', 8),
        tcbLevels: arr(id.tcbLevels, 'tdxModuleIdentity.tcbLevels').map((l) => {
          const lv = obj(l, 'tdxModuleIdentity tcbLevel');
          return { isvSvn: int(obj(lv.tcb, 'tcb').isvsvn, 'isvsvn', 255), tcbStatus: tcbStatus(lv.tcbStatus, 'tcbStatus') };
        }),
      };
    }),
    tcbLevels: arr(t.tcbLevels, 'tcbInfo.tcbLevels').map((l, i) => {
      const lv = obj(l, `tcbLevels[${i}]`);
      const tcb = obj(lv.tcb, `tcbLevels[${i}].tcb`);
      return {
        sgxComponents: components(tcb.sgxtcbcomponents, `tcbLevels[${i}].sgxtcbcomponents`),
        pceSvn: int(tcb.pcesvn, `tcbLevels[${i}].pcesvn`, 0xffff),
        tdxComponents: components(tcb.tdxtcbcomponents, `tcbLevels[${i}].tdxtcbcomponents`),
        tcbDate: str(lv.tcbDate, 'tcbDate'),
        tcbStatus: tcbStatus(lv.tcbStatus, `tcbLevels[${i}].tcbStatus`),
        advisoryIds: lv.advisoryIDs === undefined ? [] : arr(lv.advisoryIDs, 'advisoryIDs').map((a) => str(a, 'advisoryID')),
      };
    }),
  };
}

function components(v: unknown, what: string): number[] {
  const list = arr(v, what, 16);
  if (list.length !== 16) invalid(`${what} has ${list.length} entries, expected 16`);
  return list.map((c, i) => int(obj(c, `${what}[${i}]`).svn, `${what}[${i}].svn`, 255));
}

export interface TcbMatch {
  status: TcbStatus;
  level: TdxTcbLevel;
  /** Status of the TDX module's own identity level, when the module's major version > 0. */
  moduleStatus?: TcbStatus;
}

/**
 * The first TCB level (levels are listed highest first) whose SGX components and PCESVN the
 * PCK certificate meets and whose TDX components TEE_TCB_SVN meets, or undefined when the
 * platform is below every level. When TEE_TCB_SVN[1] (the TDX module's major version) is
 * non-zero, bytes 0 and 1 are judged by the matching tdxModuleIdentities entry instead.
 */
export function matchTcbLevel(info: TdxTcbInfo, pckComponents: number[], pceSvn: number, teeTcbSvn: Buffer): TcbMatch | undefined {
  const first = teeTcbSvn[1]! > 0 ? 2 : 0;
  for (const level of info.tcbLevels) {
    const sgxOk = level.sgxComponents.every((svn, i) => (pckComponents[i] ?? 0) >= svn) && pceSvn >= level.pceSvn;
    if (!sgxOk) continue;
    let tdxOk = true;
    for (let i = first; i < 16; i++) if (teeTcbSvn[i]! < level.tdxComponents[i]!) tdxOk = false;
    if (!tdxOk) continue;
    const match: TcbMatch = { status: level.tcbStatus, level };
    if (first === 2) {
      const id = `TDX_${teeTcbSvn[1]!.toString(16).padStart(2, '0').toUpperCase()}`;
      const identity = info.tdxModuleIdentities.find((m) => m.id.toUpperCase() === id);
      const moduleLevel = identity?.tcbLevels.find((l) => teeTcbSvn[0]! >= l.isvSvn);
      if (!moduleLevel) return undefined;
      match.moduleStatus = moduleLevel.tcbStatus;
    }
    return match;
  }
  return undefined;
}

/**
 * The TDX module identity check: MRSIGNERSEAM and SEAMATTRIBUTES (under the mask) must match
 * tdxModule, or the tdxModuleIdentities entry for the module's major version when present.
 */
export function tdxModuleMatches(info: TdxTcbInfo, mrSignerSeam: Buffer, seamAttributes: Buffer, teeTcbSvn: Buffer): string | undefined {
  let ref: { mrSigner: Buffer; attributes: Buffer; attributesMask: Buffer } = info.tdxModule;
  if (teeTcbSvn[1]! > 0) {
    const id = `TDX_${teeTcbSvn[1]!.toString(16).padStart(2, '0').toUpperCase()}`;
    const identity = info.tdxModuleIdentities.find((m) => m.id.toUpperCase() === id);
    if (!identity) return `no TDX module identity ${id} in the TCB info`;
    ref = identity;
  }
  if (!ref.mrSigner.equals(mrSignerSeam)) return 'MRSIGNERSEAM differs from the TCB info TDX module signer';
  for (let i = 0; i < 8; i++) {
    if ((seamAttributes[i]! & ref.attributesMask[i]!) !== (ref.attributes[i]! & ref.attributesMask[i]!)) {
      return 'SEAMATTRIBUTES differ from the TCB info TDX module attributes';
    }
  }
  return undefined;
}
