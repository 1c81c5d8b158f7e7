/**
 * QE Identity (Intel PCS enclaveIdentity version 2, id "TD_QE"): which Quoting Enclave may
 * sign TDX quotes, and the TCB status of its ISVSVN.
 */
import { invalid, obj, arr, str, int, hex, date, tcbStatus, type TcbStatus } from './json-fields.js';
import type { QeReport } from './qe.js';
import type { SignedJson } from './signed-json.js';

export interface QeIdentity {
  id: string;
  version: number;
  issueDate: Date;
  nextUpdate: Date;
  tcbEvaluationDataNumber: number;
  miscSelect: number;
  miscSelectMask: number;
  attributes: Buffer;
  attributesMask: Buffer;
  mrSigner: Buffer;
  isvProdId: number;
  tcbLevels: { isvSvn: number; tcbDate: string; tcbStatus: TcbStatus }[];
}

export function qeIdentity(doc: SignedJson): QeIdentity {
  const e = obj(doc.body, 'enclaveIdentity');
  const id = str(e.id, 'enclaveIdentity.id');
  if (id !== 'TD_QE') invalid(`enclaveIdentity id is ${id}, not TD_QE`);
  const version = int(e.version, 'enclaveIdentity.version');
  if (version !== 2) invalid(`enclaveIdentity version ${version} is not 2`);
  return {
    id, version,
    issueDate: date(e.issueDate, 'enclaveIdentity.issueDate'),
    nextUpdate: date(e.nextUpdate, 'enclaveIdentity.nextUpdate'),
    tcbEvaluationDataNumber: int(e.tcbEvaluationDataNumber, 'tcbEvaluationDataNumber'),
    // MISCSELECT is a 32-bit value; PCS writes it as big-endian hex.
    miscSelect: hex(e.miscselect, 'miscselect', 4).readUInt32BE(0),
    miscSelectMask: hex(e.miscselectMask, 'miscselectMask', 4).readUInt32BE(0),
    attributes: hex(e.attributes, 'attributes', 16),
    attributesMask: hex(e.attributesMask, 'attributesMask', 16),
    mrSigner: hex(e.mrsigner, 'mrsigner', 32),
    isvProdId: int(e.isvprodid, 'isvprodid', 0xffff),
    tcbLevels: arr(e.tcbLevels, 'enclaveIdentity.tcbLevels').map((l, i) => {
      const lv = obj(l, `tcbLevels[${i}]`);
      return {
        isvSvn: int(obj(lv.tcb, 'tcb').isvsvn, 'isvsvn', 0xffff),
        tcbDate: str(lv.tcbDate, 'tcbDate'),
        tcbStatus: tcbStatus(lv.tcbStatus, 'tcbStatus'),
      };
    }),
  };
}

/**
 * Matches the QE report against the identity: MRSIGNER, ISVPRODID, MISCSELECT and
 * ATTRIBUTES under their masks. Returns what differs, or the TCB status of the first level
 * whose ISVSVN the QE meets ("no level" when it meets none).
 */
export function matchQeIdentity(identity: QeIdentity, report: QeReport): { mismatch: string } | { status: TcbStatus | undefined } {
  if (!identity.mrSigner.equals(report.mrSigner)) return { mismatch: 'QE MRSIGNER is not the one in the QE identity' };
  if (identity.isvProdId !== report.isvProdId) return { mismatch: `QE ISVPRODID ${report.isvProdId} is not ${identity.isvProdId}` };
  if (((report.miscSelect & identity.miscSelectMask) >>> 0) !== ((identity.miscSelect & identity.miscSelectMask) >>> 0)) {
    return { mismatch: 'QE MISCSELECT does not match under the mask' };
  }
  for (let i = 0; i < 16; i++) {
    const m = identity.attributesMask[i]!;
    if ((report.attributes[i]! & m) !== (identity.attributes[i]! & m)) return { mismatch: 'QE ATTRIBUTES do not match under the mask' };
  }
  const level = identity.tcbLevels.find((l) => report.isvSvn >= l.isvSvn);
  return { status: level?.tcbStatus };
}
