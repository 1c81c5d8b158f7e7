#!/usr/bin/env node
/** attestctl: the command-line client of attestd. One file per subcommand beside this one. */
import { parseArgs } from 'node:util';
import { resolveSocket } from '../client/client.js';
import { EXIT } from './exit-codes.js';
import { reportError } from './output.js';
import { status, STATUS_HELP } from './status.js';
import { lease, LEASE_HELP } from './lease.js';
import { run, RUN_HELP } from './run.js';
import { policyCheck, POLICY_HELP } from './policy-check.js';
import { policyInit, POLICY_INIT_HELP } from './policy-init.js';
import { audit, AUDIT_HELP } from './audit.js';
import { cvm, CVM_HELP } from './cvm.js';
import { tpm, TPM_HELP } from './tpm.js';
import { gpu, GPU_HELP } from './gpu.js';
import { enroll, ENROLL_HELP } from './enroll.js';
import { verifyResultCommand, VERIFY_RESULT_HELP } from './verify-result.js';

const HELP = `Usage: attestctl [--socket PATH] [--json] <command> ...

Commands:
  status                       state, epoch, reasons, attestation key
  lease acquire|renew|release|watch|verify ...
  run [--rule R] [--grace S] -- CMD [ARGS...]   run CMD while holding a lease
  policy check FILE            validate a policy file
  policy init [--output FILE]  write a starting policy from this host's evidence
  audit verify|prove|check-inclusion|export|explain ...   offline audit log commands
  cvm verify-snp|verify-tdx ...                   offline confidential-VM report checks
  tpm eventlog FILE                               parse a TCG event log, replay its PCRs
  gpu inspect|parse-smi|verify-report ...         GPU measurement and attestation reports
  enroll challenge|respond|complete|install ...   enroll the attestation key by credential activation
  verify-result BUNDLE --ca CA.pem ...            check an attestation result offline, link by link

The socket is --socket, else $ATTESTD_SOCKET, else /run/attestd/attestd.sock.
Exit codes: 0 ok, 1 failure, 2 usage, 3 daemon unreachable, 4 refused by the daemon,
5 policy invalid, 6 token invalid or lease not live, 7 host not trusted, 8 audit log, proof or
report does not verify, 9 enroll: challenge, response or certificate does not match,
88 run: lease lost.

${STATUS_HELP}

${LEASE_HELP}

${RUN_HELP}

${POLICY_HELP}

${POLICY_INIT_HELP}

${AUDIT_HELP}

${CVM_HELP}

${TPM_HELP}

${GPU_HELP}

${ENROLL_HELP}

${VERIFY_RESULT_HELP}
`;

/** Every option of every subcommand: parsed once here, handed to the subcommand that takes it. */
const OPTIONS = {
  socket: { type: 'string' }, json: { type: 'boolean' }, rule: { type: 'string' }, hold: { type: 'boolean' },
  grace: { type: 'string' }, help: { type: 'boolean', short: 'h' }, ak: { type: 'string' }, dir: { type: 'string' },
  size: { type: 'string' }, 'leaf-hash': { type: 'string' }, index: { type: 'string' }, root: { type: 'string' }, proof: { type: 'string' },
  cert: { type: 'string' }, chain: { type: 'string' }, at: { type: 'string' }, collateral: { type: 'string' }, 'gpu-roots': { type: 'string' },
  'cvm-roots': { type: 'string' }, 'ek-cert': { type: 'string' }, 'ek-ca': { type: 'string' }, state: { type: 'string' },
  'ca-cert': { type: 'string' }, 'ca-key': { type: 'string' }, days: { type: 'string' }, ca: { type: 'string' },
  nonce: { type: 'string' }, rim: { type: 'string', multiple: true }, gpus: { type: 'string' },
  pid: { type: 'string' }, scopes: { type: 'string' },
  authorization: { type: 'string', multiple: true },
  tcti: { type: 'string' }, intent: { type: 'string' }, 'event-log': { type: 'string' }, ima: { type: 'string' }, nvml: { type: 'string' }, output: { type: 'string' },
} as const;

function parseOptions(args: string[]) {
  return parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
}

type Values = ReturnType<typeof parseOptions>['values'];

/** attestctl run: checks --grace and --gpus and that there is a COMMAND after "--". */
async function runCommand(socket: string, command: string[], values: Values, json: boolean): Promise<number> {
  if (command.length === 0) {
    process.stderr.write(`attestctl: run needs -- COMMAND\n\n${RUN_HELP}\n`);
    return EXIT.USAGE;
  }
  const grace = values.grace === undefined ? 10 : Number(values.grace);
  if (!Number.isFinite(grace) || grace < 0 || grace > 3600) {
    process.stderr.write('attestctl: --grace takes seconds from 0 to 3600\n');
    return EXIT.USAGE;
  }
  const gpus = values.gpus === undefined ? [] : values.gpus.split(',').map((g) => g.trim()).filter((g) => g !== '');
  return run(socket, command, { rule: values.rule, gpus, graceMs: grace * 1000, json, intent: values.intent,
    authorizations: values.authorization ?? [] });
}

async function policyCommand(rest: string[], values: Values, json: boolean): Promise<number> {
  if (rest[0] === 'init') {
    return policyInit({ tcti: values.tcti ?? process.env.ATTESTD_TCTI, eventLog: values['event-log'], ima: values.ima, nvml: values.nvml, output: values.output });
  }
  if (rest[0] !== 'check') {
    process.stderr.write(`attestctl: unknown policy command: ${rest[0] ?? '(none)'}\n\n${POLICY_HELP}\n`);
    return EXIT.USAGE;
  }
  return policyCheck(rest[1], json);
}

/** Runs one subcommand; `command` is what followed "--". */
async function dispatch(cmd: string | undefined, rest: string[], values: Values, command: string[], socket: string): Promise<number> {
  const json = values.json ?? false;
  switch (cmd) {
    case 'status':
      return status(socket, json);
    case 'lease':
      return lease(socket, rest, { json, rule: values.rule, hold: values.hold ?? false, nonce: values.nonce, output: values.output, intent: values.intent,
        derive: { pid: values.pid, scopes: values.scopes, gpus: values.gpus }, authorizations: values.authorization ?? [] });
    case 'run':
      return runCommand(socket, command, values, json);
    case 'audit':
      return audit(rest, { json, ak: values.ak, dir: values.dir, size: values.size, leafHash: values['leaf-hash'],
        index: values.index, root: values.root, proof: values.proof, collateral: values.collateral,
        gpuRoots: values['gpu-roots'], cvmRoots: values['cvm-roots'], ca: values.ca });
    case 'cvm':
      return cvm(rest, { json, cert: values.cert, chain: values.chain, at: values.at, collateral: values.collateral });
    case 'gpu':
      return gpu(rest, { json, nvml: values.nvml, chain: values.chain, nonce: values.nonce, rim: values.rim, at: values.at });
    case 'tpm':
      return tpm(rest, json);
    case 'policy':
      return policyCommand(rest, values, json);
    case 'verify-result':
      return verifyResultCommand(rest[0], { json, ca: values.ca, ekCa: values['ek-ca'], nonce: values.nonce });
    case 'enroll':
      return enroll(rest, { json, socket, ekCert: values['ek-cert'], ak: values.ak, ekCa: values['ek-ca'], output: values.output,
        state: values.state, caCert: values['ca-cert'], caKey: values['ca-key'], days: values.days, dir: values.dir });
    default:
      process.stderr.write(`attestctl: unknown command: ${cmd}\n\n${HELP}`);
      return EXIT.USAGE;
  }
}

async function main(argv: string[]): Promise<number> {
  // Everything after "--" belongs to the command that `run` starts.
  const dashdash = argv.indexOf('--');
  const own = dashdash >= 0 ? argv.slice(0, dashdash) : argv;
  const command = dashdash >= 0 ? argv.slice(dashdash + 1) : [];
  let parsed;
  try {
    parsed = parseOptions(own);
  } catch (err) {
    process.stderr.write(`attestctl: ${(err as Error).message}\n\n${HELP}`);
    return EXIT.USAGE;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    process.stdout.write(HELP);
    return values.help ? EXIT.OK : EXIT.USAGE;
  }
  const socket = resolveSocket(values.socket);
  const [cmd, ...rest] = positionals;
  try {
    return await dispatch(cmd, rest, values, command, socket);
  } catch (err) {
    return reportError(err, values.json ?? false);
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
}, (err) => {
  process.stderr.write(`attestctl: ${String(err)}\n`);
  process.exitCode = EXIT.FAILURE;
});
