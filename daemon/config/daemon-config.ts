/**
 * Daemon configuration from flags and environment. Validation lives here; the daemon gets a
 * complete, checked object.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AttestdError } from '../base/errors.js';
import { parseTcti } from '../evidence/tpm/tcti.js';
import type { LogLevel } from '../logger.js';
import { parseMetricsListen } from '../metrics/server.js';

export interface DaemonConfig {
  socketPath: string;
  /** Group that may connect (socket mode 0660); undefined keeps the daemon's own group. */
  socketGroup?: string;
  tcti: string;
  policyPath: string;
  stateDir: string;
  logLevel: LogLevel;
  /** Metrics endpoint (127.0.0.1:PORT, [::1]:PORT or unix:/PATH); off when undefined. */
  metricsListen?: string;
  /** Path of libnvidia-ml.so.1; default the loader's search. */
  nvmlLibrary?: string;
  /** Root of configfs-tsm; default /sys/kernel/config/tsm. */
  tsmRoot?: string;
  /** Folder of TPM vendor CA certificates (PEM or DER) to verify the EK certificate with. */
  ekCaDir?: string;
  /** Folder of GPU roots: device/ and rim/ (config/gpu-roots.ts); default the pinned NVIDIA roots. */
  gpuTrustRoots?: string;
  /** Folder of confidential-VM trust roots (amd/, intel/; cvm-roots.ts); default the pinned vendor keys. */
  cvmTrustRoots?: string;
  /** Disk budget of the audit folder: bytes, or with a K, M, G or T suffix (powers of 1024); default what the filesystem can take. */
  auditBudget?: string;
  /** `--rotate-ak`: at start, replace the stored AK by a new one it certifies (a flag only, never in the file). */
  rotateAk?: boolean;
}

export const DEFAULTS = {
  socketPath: '/run/attestd/attestd.sock',
  tcti: 'device:/dev/tpmrm0',
  policyPath: '/etc/attestd/policy.yaml',
  stateDir: '/var/lib/attestd',
  logLevel: 'info' as LogLevel,
};

export function checkConfig(c: DaemonConfig): DaemonConfig {
  parseTcti(c.tcti);
  for (const [name, value] of [['socket', c.socketPath], ['policy', c.policyPath], ['state-dir', c.stateDir]] as const) {
    if (!value) throw new AttestdError('INVALID_ARGUMENT', `--${name} must not be empty`);
  }
  if (!['debug', 'info', 'warn', 'error'].includes(c.logLevel)) {
    throw new AttestdError('INVALID_ARGUMENT', `--log-level must be debug, info, warn or error, not ${c.logLevel}`);
  }
  if (c.metricsListen !== undefined) parseMetricsListen(c.metricsListen);
  auditBudgetBytes(c);
  return { ...c, socketPath: resolve(c.socketPath), policyPath: resolve(c.policyPath), stateDir: resolve(c.stateDir) };
}

export function auditDir(c: DaemonConfig): string {
  return join(c.stateDir, 'audit');
}

/** The audit folder's disk budget in bytes, undefined when none is configured. */
export function auditBudgetBytes(c: Pick<DaemonConfig, 'auditBudget'>): number | undefined {
  if (c.auditBudget === undefined) return undefined;
  const m = /^(\d{1,15})([KMGT]?)$/i.exec(c.auditBudget.trim());
  const bytes = m ? Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase()) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new AttestdError('INVALID_ARGUMENT', `--audit-budget must be a positive number of bytes, optionally with K, M, G or T, not ${c.auditBudget}`);
  }
  return bytes;
}

/** The gid of a group name from /etc/group (Node has no getgrnam). */
export function groupId(name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
    const [group, , gid] = line.split(':');
    if (group === name && gid && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new AttestdError('INVALID_ARGUMENT', `no such group: ${name}`);
}

