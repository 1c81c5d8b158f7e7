import { PolicyError } from '../policy/parse.js';
import { loadPolicyFile } from '../config/policy-file.js';
import { requiredSelections } from '../policy/appraise.js';
import { EXIT } from './exit-codes.js';
import { printJson } from './output.js';

export const POLICY_HELP = `Usage: attestctl policy check FILE [--json]

Validates a policy file. Each problem is printed as FILE:LINE:COLUMN: FIELD: what was expected.
Exits 0 when valid, 5 when not.`;

export async function policyCheck(file: string | undefined, json: boolean): Promise<number> {
  if (!file) {
    process.stderr.write(`attestctl: policy check needs a FILE\n\n${POLICY_HELP}\n`);
    return EXIT.USAGE;
  }
  try {
    const p = await loadPolicyFile(file);
    if (json) {
      printJson({ valid: true, file: p.file, sha256: p.digest.toString('hex'), rules: p.policy.rules.map((r) => r.name),
        pcrs: requiredSelections(p.policy), interval_ms: p.policy.intervalMs, max_age_ms: p.policy.maxAgeMs });
    } else {
      process.stdout.write(`${file}: valid (sha256 ${p.digest.toString('hex')}, ${p.policy.rules.length} rule(s))\n`);
    }
    return EXIT.OK;
  } catch (err) {
    if (err instanceof PolicyError) {
      if (json) printJson({ valid: false, problems: err.problems });
      else process.stderr.write(err.message + '\n');
      return EXIT.POLICY_INVALID;
    }
    const message = (err as Error).message;
    if (json) printJson({ valid: false, problems: [{ file, line: 0, column: 0, path: '', message }] });
    else process.stderr.write(`attestctl: ${message}\n`);
    return EXIT.POLICY_INVALID;
  }
}
