/**
 * TCTI configuration strings ("name:conf", as Tss2_TctiLdr_Initialize takes them).
 *
 * The string comes from operator configuration and is handed to a C loader that splits it
 * on ':', ',' and '=' and opens whatever it names, so only a small, explicit grammar is
 * accepted: four transports, their known keys once each, absolute paths and hostnames
 * from conservative character sets, bounded lengths. Everything else is TPM_TCTI_INVALID.
 */
import { AttestdError } from '../../base/errors.js';

export interface TctiConfig {
  name: 'device' | 'tabrmd' | 'swtpm' | 'mssim';
  conf: string;
}

export const DEFAULT_DEVICE = '/dev/tpmrm0';
export const MAX_TCTI_LENGTH = 512;
const MAX_DEVICE_PATH = 255;
/** sun_path holds 108 bytes including the terminating NUL. */
const MAX_SOCKET_PATH = 107;
const MAX_HOST = 253;
const MAX_BUS_NAME = 255;

// Fixed patterns only; nothing here is built from input.
const PRINTABLE = /^[\x21-\x7e]*$/;
const ABS_PATH = /^\/[A-Za-z0-9._+@~/-]*$/;
const HOSTNAME = /^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;
const PORT = /^[1-9][0-9]{0,4}$/;
const BUS_NAME = /^[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)+$/;

export function parseTcti(s: string): TctiConfig {
  if (typeof s !== 'string') invalid('the TCTI configuration must be a string', '');
  if (s.length === 0 || s.length > MAX_TCTI_LENGTH) invalid(`must be 1..${MAX_TCTI_LENGTH} characters`, s);
  if (!PRINTABLE.test(s)) invalid('only printable ASCII without spaces is allowed', s);

  const colon = s.indexOf(':');
  const name = colon < 0 ? s : s.slice(0, colon);
  const conf = colon < 0 ? '' : s.slice(colon + 1);

  switch (name) {
    case 'device':
      if (conf === '') return { name, conf: DEFAULT_DEVICE };
      checkPath(conf, MAX_DEVICE_PATH, s);
      return { name, conf };
    case 'tabrmd':
      checkTabrmd(conf, s);
      return { name, conf };
    case 'swtpm':
    case 'mssim':
      checkSocket(name, conf, s);
      return { name, conf };
    default:
      return invalid('the transport must be device, tabrmd, swtpm or mssim', s);
  }
}

/** The loader string for a configuration; the configuration is validated again first. */
export function formatTcti(cfg: TctiConfig): string {
  const parsed = parseTcti(`${String(cfg?.name)}:${String(cfg?.conf)}`);
  return `${parsed.name}:${parsed.conf}`;
}

function checkTabrmd(conf: string, s: string): void {
  if (conf === '') return;
  const kv = keyValues(conf, ['bus_name', 'bus_type'], s);
  const busName = kv.get('bus_name');
  if (busName !== undefined && (busName.length > MAX_BUS_NAME || !BUS_NAME.test(busName))) {
    invalid('bus_name is not a D-Bus name', s);
  }
  const busType = kv.get('bus_type');
  if (busType !== undefined && busType !== 'system' && busType !== 'session') {
    invalid('bus_type must be system or session', s);
  }
}

function checkSocket(name: 'swtpm' | 'mssim', conf: string, s: string): void {
  const kv = keyValues(conf, name === 'swtpm' ? ['path', 'host', 'port'] : ['host', 'port'], s);
  const path = kv.get('path');
  if (path !== undefined) {
    if (kv.size !== 1) invalid('path cannot be combined with host or port', s);
    checkPath(path, MAX_SOCKET_PATH, s);
    return;
  }
  const host = kv.get('host');
  if (host !== undefined && !isHost(host)) invalid('host is not a hostname or IP address', s);
  const port = kv.get('port');
  if (port !== undefined && (!PORT.test(port) || Number(port) > 65535)) invalid('port must be 1..65535', s);
}

/** "k=v,k=v" with keys from `allowed`, each at most once, at least one. */
function keyValues(conf: string, allowed: string[], s: string): Map<string, string> {
  if (conf === '') invalid(`expected ${allowed.join(', ')} settings`, s);
  const out = new Map<string, string>();
  for (const item of conf.split(',')) {
    const eq = item.indexOf('=');
    if (eq <= 0 || eq === item.length - 1 || item.indexOf('=', eq + 1) >= 0) {
      invalid('settings must be key=value pairs separated by commas', s);
    }
    const key = item.slice(0, eq);
    if (!allowed.includes(key)) invalid(`unknown setting; allowed: ${allowed.join(', ')}`, s);
    if (out.has(key)) invalid(`${key} is given twice`, s);
    out.set(key, item.slice(eq + 1));
  }
  return out;
}

function checkPath(path: string, max: number, s: string): void {
  if (path.length > max || !ABS_PATH.test(path)) {
    invalid(`the path must be absolute, at most ${max} characters of [A-Za-z0-9._+@~/-]`, s);
  }
}

function isHost(host: string): boolean {
  if (host.length > MAX_HOST) return false;
  if (HOSTNAME.test(host)) return true;
  return host.includes(':') && host.length <= 45 && IPV6.test(host);
}

function invalid(reason: string, s: string): never {
  const shown = s.length > 80 ? `${s.slice(0, 80)}...` : s;
  throw new AttestdError('TPM_TCTI_INVALID', `invalid TCTI ${JSON.stringify(shown)}: ${reason}`);
}
