/** attestctl audit ...: offline commands over a log folder; no daemon, no TPM, no network. */
import { auditVerify, AUDIT_VERIFY_HELP } from './audit-verify.js';
import { auditProve, checkInclusion, AUDIT_PROVE_HELP } from './audit-prove.js';
import { auditExport, AUDIT_EXPORT_HELP } from './audit-export.js';
import { auditExplain, AUDIT_EXPLAIN_HELP } from './audit-explain.js';
import { EXIT } from './exit-codes.js';

export const AUDIT_HELP = `${AUDIT_VERIFY_HELP}\n\n${AUDIT_PROVE_HELP}\n\n${AUDIT_EXPORT_HELP}\n\n${AUDIT_EXPLAIN_HELP}`;
export const DEFAULT_AUDIT_DIR = '/var/lib/attestd/audit';

export interface AuditOptions {
  json: boolean;
  ak?: string;
  dir?: string;
  size?: string;
  leafHash?: string;
  index?: string;
  root?: string;
  proof?: string;
  collateral?: string;
  gpuRoots?: string;
  cvmRoots?: string;
  /** audit verify: the enrolling CA to anchor on instead of --ak. */
  ca?: string | undefined;
}

export async function audit(args: string[], o: AuditOptions): Promise<number> {
  const [sub, ...rest] = args;
  const dir = o.dir ?? process.env.ATTESTD_AUDIT_DIR ?? DEFAULT_AUDIT_DIR;
  switch (sub) {
    case 'verify':
      return auditVerify(rest[0], o.ak, o.json, o.collateral, o.gpuRoots, o.cvmRoots, o.ca);
    case 'prove':
      return auditProve(rest, { dir, size: o.size, json: o.json });
    case 'check-inclusion':
      return checkInclusion({ leafHash: o.leafHash, index: o.index, size: o.size, root: o.root, proof: o.proof, json: o.json });
    case 'export':
      return auditExport(rest[0], dir, o.json);
    case 'explain':
      return auditExplain(rest[0], rest[1] ?? dir, o.json);
    default:
      process.stderr.write(`attestctl: unknown audit command: ${sub ?? '(none)'}\n\n${AUDIT_HELP}\n`);
      return EXIT.USAGE;
  }
}
