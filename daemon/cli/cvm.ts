/** attestctl cvm verify-snp | verify-tdx: offline checks of single confidential-VM reports. */
import { cvmVerifySnp, CVM_VERIFY_SNP_HELP } from './cvm-verify-snp.js';
import { cvmVerifyTdx, CVM_VERIFY_TDX_HELP } from './cvm-verify-tdx.js';
import { EXIT } from './exit-codes.js';

export const CVM_HELP = `${CVM_VERIFY_SNP_HELP}\n\n${CVM_VERIFY_TDX_HELP}`;

export interface CvmOptions {
  json: boolean;
  cert?: string;
  chain?: string;
  at?: string;
  collateral?: string;
}

export async function cvm(args: string[], o: CvmOptions): Promise<number> {
  const [sub, file] = args;
  switch (sub) {
    case 'verify-snp':
      return cvmVerifySnp(file, { cert: o.cert, chain: o.chain, at: o.at, json: o.json });
    case 'verify-tdx':
      return cvmVerifyTdx(file, { collateral: o.collateral, at: o.at, json: o.json });
    default:
      process.stderr.write(`attestctl: unknown cvm command: ${sub ?? '(none)'}\n\n${CVM_HELP}\n`);
      return EXIT.USAGE;
  }
}
