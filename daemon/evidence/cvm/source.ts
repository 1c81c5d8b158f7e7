/**
 * The confidential-VM evidence source: asks the CPU for a report over the epoch binding,
 * through configfs-tsm where the kernel has it, else the legacy guest device. Reports what it
 * used. On a host that is not a confidential VM it reports nothing; whether that passes is the
 * policy's decision.
 */
import { access } from 'node:fs/promises';
import { AttestdError } from '../../base/errors.js';
import { cvmReport } from '../../native.js';
import { expectedReportData, type CvmKind } from '../../verify/cvm/verify.js';
import { DEFAULT_TSM_ROOT, tsmAvailable, tsmReport } from './tsm.js';

export interface CvmCollected {
  kind: CvmKind;
  via: 'configfs-tsm' | 'sev-guest' | 'tdx-guest';
  provider: string;
  report: Buffer;
  certTable?: Buffer;
}

export interface CvmSourceOptions {
  tsmRoot?: string;
  sevGuest?: string;
  tdxGuest?: string;
}

/** configfs-tsm provider names of the kernel's guest drivers. */
function kindOfProvider(provider: string): CvmKind {
  if (provider.startsWith('sev_guest')) return 'snp';
  if (provider.startsWith('tdx_guest')) return 'tdx';
  throw new AttestdError('CVM_REPORT_MALFORMED', `unknown configfs-tsm provider "${provider.slice(0, 64)}"`);
}

export class CvmSource {
  constructor(private readonly opts: CvmSourceOptions = {}) {}

  /** The report over `binding`, or undefined when this host offers no confidential-VM interface. */
  async collect(binding: Buffer): Promise<CvmCollected | undefined> {
    const data = expectedReportData(binding);
    const root = this.opts.tsmRoot ?? DEFAULT_TSM_ROOT;
    if (await tsmAvailable(root)) {
      const r = await tsmReport(data, { root });
      return { kind: kindOfProvider(r.provider), via: 'configfs-tsm', provider: r.provider, report: r.outblob, certTable: r.auxblob };
    }
    const sev = this.opts.sevGuest ?? '/dev/sev-guest';
    if (await exists(sev)) {
      const r = await cvmReport('snp-ext', sev, data).catch(() => cvmReport('snp', sev, data));
      return { kind: 'snp', via: 'sev-guest', provider: 'sev_guest', report: r.report, certTable: r.certs };
    }
    const tdx = this.opts.tdxGuest ?? '/dev/tdx_guest';
    if (await exists(tdx)) {
      // A TDREPORT is MAC'd for the local platform only; turning it into a verifiable quote
      // needs the quoting enclave, which configfs-tsm provides. Reported as such.
      throw new AttestdError('CVM_UNAVAILABLE', 'this kernel has /dev/tdx_guest but no configfs-tsm: a TDX quote cannot be obtained');
    }
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}
