/**
 * Socket activation: the listening socket systemd passes (LISTEN_PID, LISTEN_FDS,
 * LISTEN_FDNAMES; fds start at 3). With names, the one called "attestd" is taken; without,
 * exactly one fd is expected. Anything else is a configuration error, reported at start.
 */
import { AttestdError } from '../base/errors.js';

const SD_LISTEN_FDS_START = 3;

export function listenFdFromSystemd(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number | undefined {
  if (!env.LISTEN_PID || !env.LISTEN_FDS || Number(env.LISTEN_PID) !== pid) return undefined;
  const count = Number(env.LISTEN_FDS);
  if (!Number.isInteger(count) || count < 1) return undefined;
  const names = env.LISTEN_FDNAMES ? env.LISTEN_FDNAMES.split(':') : [];
  if (names.length === count) {
    const i = names.indexOf('attestd');
    if (i >= 0) return SD_LISTEN_FDS_START + i;
    if (count === 1) return SD_LISTEN_FDS_START;
    throw new AttestdError('INVALID_ARGUMENT', `systemd passed ${count} sockets and none is named "attestd" (${env.LISTEN_FDNAMES})`);
  }
  if (count > 1) throw new AttestdError('INVALID_ARGUMENT', 'systemd passed more than one socket; name the lease socket "attestd"');
  return SD_LISTEN_FDS_START;
}
