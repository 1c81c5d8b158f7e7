#!/usr/bin/env node
/**
 * attestd: the attestation daemon. Flags override environment variables, which override the
 * defaults. SIGHUP reloads the policy; SIGTERM and SIGINT stop it cleanly.
 */
// First: V8 settings must be in place before the other modules allocate.
import './runtime-flags.js';
import { parseArgs } from 'node:util';
import { Daemon, VERSION } from './daemon.js';
import { checkConfig, DEFAULTS, type DaemonConfig } from './config/daemon-config.js';
import { createLogger, type LogLevel } from './logger.js';
import { PolicyError } from './policy/parse.js';
import { asAttestdError } from './base/errors.js';
import { readConfigFile } from './config/config-file.js';

const HELP = `Usage: attestd [options]

Attests this host continuously with its TPM and serves execution leases on a Unix socket.

Options:
  --config FILE        settings file, YAML with keys socket, socket_group, tcti, policy, state_dir,
                       log_level, metrics, audit_budget (env ATTESTD_CONFIG); flags and environment
                       override it
  --socket PATH        lease socket (env ATTESTD_SOCKET; default ${DEFAULTS.socketPath})
  --socket-group NAME  group allowed to connect, socket mode 0660 (env ATTESTD_SOCKET_GROUP)
  --tcti TCTI          device:/dev/tpmrm0 | tabrmd: | swtpm:path=SOCK | swtpm:host=H,port=P
                       (env ATTESTD_TCTI; default ${DEFAULTS.tcti})
  --policy FILE        policy YAML (env ATTESTD_POLICY; default ${DEFAULTS.policyPath})
  --state-dir DIR      audit log and state (env ATTESTD_STATE_DIR; default ${DEFAULTS.stateDir})
  --log-level LEVEL    debug | info | warn | error (env ATTESTD_LOG_LEVEL; default info)
  --nvml PATH          libnvidia-ml.so.1 to load (env ATTESTD_NVML; default the system's)
  --ek-ca DIR          TPM vendor CA certificates (roots and intermediates) to verify every EK
                       certificate with, to a root in DIR (env ATTESTD_EK_CA)
  --gpu-roots DIR      root certificates for GPU reports (DIR/device) and RIMs (DIR/rim) in place
                       of the pinned NVIDIA roots (env ATTESTD_GPU_ROOTS)
  --tsm-root DIR       configfs-tsm root for confidential-VM reports (env ATTESTD_TSM_ROOT;
                       default /sys/kernel/config/tsm)
  --cvm-roots DIR      trust roots for confidential-VM reports: DIR/amd/ (SEV-SNP ARKs), DIR/intel/
                       (Intel SGX Root CA); a vendor without its folder keeps the pinned roots
                       (env ATTESTD_CVM_ROOTS)
  --metrics ADDR       Prometheus endpoint: 127.0.0.1:PORT, [::1]:PORT or unix:/PATH
                       (env ATTESTD_METRICS; default off)
  --audit-budget SIZE  disk budget of the audit folder, bytes or with K, M, G, T (env
                       ATTESTD_AUDIT_BUDGET; default what the filesystem can take, less a reserve)
  --rotate-ak          at start, replace the stored attestation key by a new one that the old key
                       certifies (TPM2_Certify), recorded in the audit log, and pin the new key
                       (docs/operator-guide.md); nothing to do on a first start. A flag only
  --version            print the version
  -h, --help           this text

Exit codes: 0 stopped cleanly, 1 runtime failure, 2 bad arguments, 3 invalid policy at start.
`;

type Flags = ReturnType<typeof parseFlags>;

function parseFlags(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      socket: { type: 'string' }, 'socket-group': { type: 'string' }, tcti: { type: 'string' }, policy: { type: 'string' },
      'state-dir': { type: 'string' }, 'log-level': { type: 'string' }, metrics: { type: 'string' }, config: { type: 'string' },
      nvml: { type: 'string' }, 'tsm-root': { type: 'string' }, 'ek-ca': { type: 'string' }, 'cvm-roots': { type: 'string' },
      'gpu-roots': { type: 'string' }, 'audit-budget': { type: 'string' }, 'rotate-ak': { type: 'boolean' }, version: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }).values;
}

/** Flags, then the environment, then the settings file, then the defaults; checked. */
function resolveConfig(values: Flags, env: NodeJS.ProcessEnv): DaemonConfig {
  const configPath = values.config ?? env.ATTESTD_CONFIG;
  const file = configPath ? readConfigFile(configPath) : {};
  return checkConfig({
    socketPath: values.socket ?? env.ATTESTD_SOCKET ?? file.socket ?? DEFAULTS.socketPath,
    socketGroup: values['socket-group'] ?? env.ATTESTD_SOCKET_GROUP ?? file.socket_group,
    tcti: values.tcti ?? env.ATTESTD_TCTI ?? file.tcti ?? DEFAULTS.tcti,
    policyPath: values.policy ?? env.ATTESTD_POLICY ?? file.policy ?? DEFAULTS.policyPath,
    stateDir: values['state-dir'] ?? env.ATTESTD_STATE_DIR ?? file.state_dir ?? DEFAULTS.stateDir,
    logLevel: (values['log-level'] ?? env.ATTESTD_LOG_LEVEL ?? file.log_level ?? DEFAULTS.logLevel) as LogLevel,
    metricsListen: values.metrics ?? env.ATTESTD_METRICS ?? file.metrics,
    nvmlLibrary: values.nvml ?? env.ATTESTD_NVML ?? file.nvml,
    tsmRoot: values['tsm-root'] ?? env.ATTESTD_TSM_ROOT ?? file.tsm_root,
    ekCaDir: values['ek-ca'] ?? env.ATTESTD_EK_CA ?? file.ek_ca,
    gpuTrustRoots: values['gpu-roots'] ?? env.ATTESTD_GPU_ROOTS ?? file.gpu_roots,
    cvmTrustRoots: values['cvm-roots'] ?? env.ATTESTD_CVM_ROOTS ?? file.cvm_roots,
    auditBudget: values['audit-budget'] ?? env.ATTESTD_AUDIT_BUDGET ?? file.audit_budget,
    rotateAk: values['rotate-ak'] === true,
  });
}

/** Starts the daemon and serves until SIGTERM or SIGINT; the exit code. */
async function serve(config: DaemonConfig): Promise<number> {
  const log = createLogger(config.logLevel);
  let daemon: Daemon;
  try {
    daemon = await Daemon.start(config, log);
  } catch (err) {
    if (err instanceof PolicyError) {
      process.stderr.write(`attestd: invalid policy, not starting:\n${err.message}\n`);
      return 3;
    }
    const e = asAttestdError(err);
    log('error', 'start failed', { code: e.code, err: e.message });
    process.stderr.write(`attestd: cannot start: ${e.code}: ${e.message}\n`);
    return 1;
  }
  process.stderr.write(`attestd: serving leases on ${config.socketPath}\n`);
  process.on('SIGHUP', () => void daemon.reloadPolicy());
  return await new Promise<number>((resolve) => {
    const stop = () => void daemon.stop().then(() => resolve(0), () => resolve(1));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

async function main(): Promise<number> {
  let values: Flags;
  try {
    values = parseFlags(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`attestd: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`attestd ${VERSION}\n`);
    return 0;
  }
  let config: DaemonConfig;
  try {
    config = resolveConfig(values, process.env);
  } catch (err) {
    process.stderr.write(`attestd: ${(err as Error).message}\n`);
    return 2;
  }
  return serve(config);
}

main().then((code) => process.exit(code), (err) => {
  process.stderr.write(`attestd: ${String(err)}\n`);
  process.exit(1);
});
