/** attestctl tpm ...: offline inspection of TPM artifacts. */
import { tpmEventlog, TPM_EVENTLOG_HELP } from './tpm-eventlog.js';
import { EXIT } from './exit-codes.js';

export const TPM_HELP = TPM_EVENTLOG_HELP;

export async function tpm(args: string[], json: boolean): Promise<number> {
  const [sub, file] = args;
  if (sub === 'eventlog') return tpmEventlog(file, json);
  process.stderr.write(`attestctl: unknown tpm command: ${sub ?? '(none)'}\n\n${TPM_HELP}\n`);
  return EXIT.USAGE;
}
